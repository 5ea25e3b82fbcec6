"""Differential tests against the ORIGINAL PyTorch MaskFormer's forward.

`goldens/reference_forward` (../shared) holds detectron2 MaskFormer weights
(two key spellings), their config.yaml and every intermediate of the
PyTorch forward on one 128×128 image. The converted model must match every
array within max |Δ| <= 1e-4 · max |ref| and give the same panoptic result
on the boosted logits.
"""

import pickle

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.detectron2_import import converter
from trainer_module.detectron2_import import detectron2_config
from trainer_module.detectron2_import import detectron2_mapping
from trainer_module.detectron2_import import detectron2_pickle
from trainer_module.detectron2_import import differential
from trainer_module.detectron2_import import testing
from trainer_module.detectron2_import.detectron2_pickle import CheckpointError

# Every array of forward.npz the port must reproduce.
COMPARED_ARRAYS = {
    'normalized_input', 'res2', 'res3', 'res4', 'res5',
    'pixel_decoder_input_proj', 'pixel_decoder_pos_embed',
    'predictor_pos_embed', 'transformer_encoder_features', 'mask_features',
    'decoder_hs', 'pred_logits', 'pred_masks', 'aux_0_pred_logits',
    'aux_0_pred_masks', 'aux_1_pred_logits', 'aux_1_pred_masks',
    'panoptic_mask_pred', 'pred_logits_boosted'}


def _num_elements(variables) -> int:
  return sum(int(np.prod(v.shape)) for v in variables)


@pytest.fixture(scope='module')
def reference(reference_forward_dir):
  return reference_forward_dir


@pytest.fixture(scope='module')
def forward(reference):
  return np.load(reference / 'forward.npz')


@pytest.mark.parametrize('pkl', ['weights.pkl', 'weights_official_naming.pkl'])
def test_converted_model_matches_pytorch_elementwise(reference, forward, pkl):
  converted = converter.convert_maskformer(
      str(reference / pkl), str(reference / 'config.yaml'), 128)
  assert converted.num_variables == len(converted.model.variables)
  # The oracle README's PyTorch counts: 1,954,742 trainable parameters;
  # 1,981,436 state_dict elements, of which criterion.empty_weight (134) is
  # no model variable.
  assert _num_elements(converted.model.trainable_variables) == 1_954_742
  assert _num_elements(converted.model.variables) == 1_981_436 - 134
  rows, panoptic = differential.compare(converted.model, forward)
  assert {row.name for row in rows} == COMPARED_ARRAYS
  failing = [row for row in rows if not row.passes()]
  assert not failing, differential.format_table(failing)
  # Two correct float32 implementations agree to ~1e-6 (README); a wrong
  # convention (padding, eps, ordering) gives errors of order 1e-2..1.
  assert max(row.relative for row in rows) < 1e-5
  assert panoptic['identical'], panoptic
  assert panoptic['segments'] == [
      {'id': 1, 'isthing': True, 'category_id': 14}]


def test_tf_same_padding_would_not_match(reference, forward):
  """The TFMG-convention ResNet conv padding ('SAME') breaks parity: the
  comparison detects a convention error."""
  converted = converter.convert_maskformer(
      str(reference / 'weights.pkl'), str(reference / 'config.yaml'), 128)
  stem = converted.model.backbone.stem
  stem._padding = 0
  stem.conv.padding = 'same'
  stem.conv._tf_data_format = None
  rows, _ = differential.compare(converted.model, forward)
  res2 = next(row for row in rows if row.name == 'res2')
  assert not res2.passes()


def test_leftover_tensors_and_unset_variables_are_named(reference):
  tensors = detectron2_pickle.normalize_maskformer_names(
      detectron2_pickle.load_detectron2_pickle(str(reference / 'weights.pkl')))
  dropped = 'sem_seg_head.predictor.transformer.decoder.layers.1.norm2.bias'
  del tensors[dropped]
  tensors['sem_seg_head.predictor.extra_head.weight'] = np.zeros([2, 2])
  settings = detectron2_config.settings_from_config(
      detectron2_config.load_config(str(reference / 'config.yaml')), 128)
  with converter.float32_policy():
    from trainer_module.modeling import factory
    model = factory.build_maskformer_model(settings.model)
    model(tf.zeros([1, 128, 128, 3]))
  with pytest.raises(CheckpointError) as error:
    detectron2_mapping.assign(tensors, model.checkpoint_items, 'x.pkl', 133)
  message = str(error.value)
  assert 'sem_seg_head.predictor.extra_head.weight' in message
  assert 'transformer_decoder/layer_1/norm2/beta' in message
  assert message.startswith('x.pkl: cannot convert')


def test_shape_mismatch_is_named(reference, tmp_path):
  tensors = detectron2_pickle.load_detectron2_pickle(
      str(reference / 'weights.pkl'))
  tensors['sem_seg_head.predictor.class_embed.bias'] = np.zeros([81],
                                                                np.float32)
  path = tmp_path / 'bad.pkl'
  path.write_bytes(pickle.dumps({'model': tensors}))
  with pytest.raises(CheckpointError, match=r'class_embed\.bias \[81\] does '
                     r'not fit heads/class_head/bias \[134\]'):
    converter.convert_maskformer(str(path), str(reference / 'config.yaml'),
                                 128)


def test_key_spellings_normalise_to_the_same_tensors(reference):
  state_dict = detectron2_pickle.load_detectron2_pickle(
      str(reference / 'weights.pkl'))
  official = detectron2_pickle.load_detectron2_pickle(
      str(reference / 'weights_official_naming.pkl'))
  assert 'sem_seg_head.layer_4.weight' in official
  a = detectron2_pickle.normalize_maskformer_names(state_dict)
  b = detectron2_pickle.normalize_maskformer_names(official)
  assert sorted(a) == sorted(state_dict) == sorted(b)
  both = dict(official, **{'sem_seg_head.pixel_decoder.layer_4.weight':
                           official['sem_seg_head.layer_4.weight']})
  with pytest.raises(CheckpointError, match='twice'):
    detectron2_pickle.normalize_maskformer_names(both)


def test_bad_files_give_clear_errors(tmp_path):
  missing = tmp_path / 'missing.pkl'
  with pytest.raises(CheckpointError, match='no such checkpoint file'):
    detectron2_pickle.load_detectron2_pickle(str(missing))
  garbage = tmp_path / 'garbage.pkl'
  garbage.write_bytes(b'not a pickle')
  with pytest.raises(CheckpointError, match='garbage.pkl: not a detectron2'):
    detectron2_pickle.load_detectron2_pickle(str(garbage))
  listed = tmp_path / 'list.pkl'
  listed.write_bytes(pickle.dumps({'model': {'a': [1.0]}}))
  with pytest.raises(CheckpointError, match=r'not numpy arrays.*a \(list\)'):
    detectron2_pickle.load_detectron2_pickle(str(listed))


def test_config_yaml_gives_the_oracle_architecture(reference):
  settings = detectron2_config.settings_from_config(
      detectron2_config.load_config(str(reference / 'config.yaml')), 128)
  model = settings.model
  resnet = model.backbone.detectron2_resnet
  assert model.backbone.type == 'detectron2_resnet'
  assert (resnet.depth, resnet.stem_out_channels, resnet.res2_out_channels,
          resnet.width_per_group, resnet.stride_in_1x1) == (50, 16, 64, 16,
                                                            False)
  assert (model.hidden_size, model.num_queries, model.num_classes) == (64, 20,
                                                                       133)
  assert model.pixel_decoder.num_encoder_layers == 2
  assert model.pixel_decoder.mask_dim == 64
  assert model.pixel_decoder.fpn_norm_groups == 32
  assert (model.transformer_decoder.num_layers,
          model.transformer_decoder.num_heads,
          model.transformer_decoder.ffn_dim) == (3, 4, 128)
  assert (settings.object_mask_threshold, settings.overlap_threshold) == (
      0.8, 0.8)


def test_default_config_is_the_official_r50_model():
  settings = detectron2_config.settings_from_config(
      detectron2_config.load_config(None), 640)
  model = settings.model
  resnet = model.backbone.detectron2_resnet
  assert (resnet.depth, resnet.stem_out_channels, resnet.res2_out_channels,
          resnet.width_per_group) == (50, 64, 256, 64)
  assert (model.hidden_size, model.num_queries, model.input_size) == (
      256, 100, [640, 640, 3])
  assert model.pixel_decoder.num_encoder_layers == 6
  assert model.transformer_decoder.num_layers == 6


@pytest.mark.parametrize('key,value', [
    ('MODEL.MASK_FORMER.PRE_NORM', True),
    ('MODEL.BACKBONE.NAME', 'D2SwinTransformer'),
    ('MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME', 'BasePixelDecoder'),
    ('MODEL.RESNETS.DEPTH', 18),
    ('MODEL.PIXEL_STD', [1.0, 1.0, 1.0]),
])
def test_unsupported_config_values_are_named(key, value):
  config = detectron2_config.load_config(None)
  config[key] = value
  with pytest.raises(CheckpointError, match=key.replace('.', r'\.')):
    detectron2_config.settings_from_config(config, 128)


def test_imagenet_backbone_pkl_converts_backbone_only(reference, forward,
                                                      tmp_path):
  path = tmp_path / 'R-50.pkl'
  imagenet = testing.write_imagenet_pkl(reference, path)
  backbone, ignored = converter.convert_backbone(
      str(path), str(reference / 'config.yaml'), 128)
  assert sorted(ignored) == ['stem.fc.bias', 'stem.fc.weight']
  from trainer_module import raw_outputs
  features = backbone(raw_outputs.normalize_uint8(
      forward['image_rgb'][None], differential.PIXEL_MEAN,
      differential.PIXEL_STD))
  for level in range(2, 6):
    ours = np.transpose(np.asarray(features[str(level)]), (0, 3, 1, 2))
    theirs = forward[f'res{level}']
    assert np.max(np.abs(ours - theirs)) <= 1e-4 * np.max(np.abs(theirs))
  # An extra non-backbone tensor is refused by name.
  imagenet['res5.0.conv4.weight'] = np.zeros([1], np.float32)
  path.write_bytes(pickle.dumps({'model': imagenet}))
  with pytest.raises(CheckpointError, match=r'backbone\.res5\.0\.conv4'):
    converter.convert_backbone(str(path), str(reference / 'config.yaml'), 128)
