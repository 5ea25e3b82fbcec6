"""`maskformer-tfx import-weights` / `diff-test` end to end on the oracle.

Converts the reference weights (official model-zoo key spelling) at S = 128,
then checks what the issue asks of DIR: the SavedModel's `raw_outputs`
reproduce the PyTorch outputs, the pipeline's serving signatures run,
`params.yaml` builds the task and its `initialize()` restores the converted
checkpoint (whole model and backbone only).
"""

import io
import pathlib
import pickle

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from runners import cli
from trainer_module import registry_imports
from trainer_module import raw_outputs
from trainer_module.detectron2_import import detectron2_mapping
from trainer_module.detectron2_import import differential
from trainer_module.detectron2_import import testing as detectron2_testing

TOLERANCE = 1e-4


@pytest.fixture(scope='module')
def imported(reference_forward_dir, tmp_path_factory) -> pathlib.Path:
  output = tmp_path_factory.mktemp('imported')
  assert cli.main([
      'import-weights',
      '--pkl', str(reference_forward_dir / 'weights_official_naming.pkl'),
      '--config', str(reference_forward_dir / 'config.yaml'),
      '--image-size', '128',
      '--output', str(output)]) == 0
  return output


@pytest.fixture(scope='module')
def saved_model(imported):
  return tf.saved_model.load(str(imported / 'saved_model'))


def _close(ours, theirs):
  return np.max(np.abs(ours - theirs)) <= TOLERANCE * np.max(np.abs(theirs))


def test_raw_outputs_signature_matches_pytorch(saved_model,
                                               reference_forward_dir):
  forward = np.load(reference_forward_dir / 'forward.npz')
  loaded = saved_model
  assert {'serving_default', 'serving_examples', 'transform_labels',
          'raw_outputs'} <= set(loaded.signatures)
  outputs = loaded.signatures['raw_outputs'](
      images=tf.constant(forward['image_rgb'][None]))
  assert outputs['pred_logits'].dtype == tf.float32
  assert outputs['pred_logits'].shape == [1, 20, 134]
  assert outputs['pred_masks'].shape == [1, 32, 32, 20]
  assert outputs['aux_pred_logits'].shape == [2, 1, 20, 134]
  assert outputs['aux_pred_masks'].shape == [2, 1, 32, 32, 20]
  assert _close(outputs['pred_logits'].numpy(), forward['pred_logits'])
  assert _close(np.transpose(outputs['pred_masks'].numpy(), (0, 3, 1, 2)),
                forward['pred_masks'])
  for i in range(2):
    assert _close(outputs['aux_pred_logits'].numpy()[i],
                  forward[f'aux_{i}_pred_logits'])
    assert _close(np.transpose(outputs['aux_pred_masks'].numpy()[i],
                               (0, 3, 1, 2)), forward[f'aux_{i}_pred_masks'])


def test_serving_default_signature_runs(saved_model, reference_forward_dir):
  forward = np.load(reference_forward_dir / 'forward.npz')
  buffer = io.BytesIO()
  Image.fromarray(forward['image_rgb']).save(buffer, format='PNG')
  result = saved_model.signatures['serving_default'](
      images=tf.constant([buffer.getvalue()]))
  png = Image.open(io.BytesIO(result['panoptic_png_bytes'].numpy()[0]))
  assert png.size == Image.open(buffer).size
  assert result['segment_id'].shape == [1, 20]


def _task_and_model(params):
  task = task_factory.get_task(params.task)
  model = task.build_model()
  model(tf.zeros([1, 128, 128, 3]))
  task.initialize(model)
  return model


def test_params_and_checkpoint_initialize_the_task(imported,
                                                   reference_forward_dir):
  forward = np.load(reference_forward_dir / 'forward.npz')
  params = exp_factory.get_exp_config('maskformer_coco_panoptic_d2')
  params = hyperparams.override_params_dict(
      params, str(imported / 'params.yaml'), is_strict=True)
  assert params.task.init_checkpoint == str(imported)
  assert params.task.init_checkpoint_modules == 'all'
  assert params.task.model.backbone.type == 'detectron2_resnet'
  assert params.task.model.input_size == [128, 128, 3]
  # 'all': the task's model reproduces the PyTorch outputs.
  model = _task_and_model(params)
  outputs = model(raw_outputs.normalize_uint8(
      forward['image_rgb'][None], differential.PIXEL_MEAN,
      differential.PIXEL_STD), training=False)
  assert _close(outputs['class_logits'].numpy(), forward['pred_logits'])
  converted = {key: value.numpy() for key, value in
               detectron2_mapping.variable_keys(model.checkpoint_items).items()}
  # 'backbone': the backbone is restored, the rest keeps its initialisation.
  params.task.init_checkpoint_modules = 'backbone'
  values = detectron2_mapping.variable_keys(
      _task_and_model(params).checkpoint_items)
  for key, value in values.items():
    if key.startswith('backbone/'):
      assert np.array_equal(value.numpy(), converted[key]), key
  assert not np.array_equal(
      values['transformer_decoder/query_embeddings'].numpy(),
      converted['transformer_decoder/query_embeddings'])


def test_diff_test_command_prints_the_table(reference_forward_dir, capsys):
  assert cli.main([
      'diff-test', '--pkl', str(reference_forward_dir / 'weights.pkl'),
      '--config', str(reference_forward_dir / 'config.yaml'),
      '--forward', str(reference_forward_dir / 'forward.npz')]) == 0
  output = capsys.readouterr().out
  for name in ('res5', 'transformer_encoder_features', 'decoder_hs',
               'aux_1_pred_masks', 'panoptic on boosted logits: identical'):
    assert name in output
  assert 'PASS' in output


def test_bad_checkpoint_fails_with_one_clear_line(tmp_path, capsys):
  bad = tmp_path / 'bad.pkl'
  bad.write_bytes(b'\x00junk')
  assert cli.main(['import-weights', '--pkl', str(bad), '--image-size', '64',
                   '--output', str(tmp_path / 'out')]) == 1
  error = capsys.readouterr().err
  assert 'import-weights failed' in error and 'bad.pkl' in error


class _RunsCode:
  """Unpickles to `exec(code)`."""

  def __init__(self, code: str):
    self.code = code

  def __reduce__(self):
    return (exec, (self.code,))


@pytest.mark.parametrize('command', ['import-weights', 'diff-test'])
def test_checkpoint_with_code_is_refused_before_it_runs(
    reference_forward_dir, tmp_path, capsys, command):
  marker = tmp_path / 'ran.txt'
  poisoned = tmp_path / 'model_final.pkl'
  poisoned.write_bytes(pickle.dumps({'model': {
      'backbone.stem.conv1.weight': np.zeros([2, 3, 1, 1], np.float32),
      'pixel_mean': _RunsCode(f'open({str(marker)!r}, "w").write("x")')}}))
  extra = (['--image-size', '64', '--output', str(tmp_path / 'out')]
           if command == 'import-weights' else
           ['--forward', str(reference_forward_dir / 'forward.npz')])
  assert cli.main([command, '--pkl', str(poisoned)] + extra) == 1
  error = capsys.readouterr().err
  assert f'{command} failed: {poisoned}: refused' in error
  assert 'builtins.exec' in error and 'Traceback' not in error
  assert not marker.exists()


def test_backbone_only_import_initialises_the_backbone(reference_forward_dir,
                                                       tmp_path):
  """detectron2's ImageNet R-50.pkl layout (here the oracle's backbone keys
  without `backbone.`, plus the ImageNet classifier) → a backbone checkpoint
  that `init_checkpoint_modules: backbone` restores."""
  forward = np.load(reference_forward_dir / 'forward.npz')
  pkl = tmp_path / 'R-50.pkl'
  detectron2_testing.write_imagenet_pkl(reference_forward_dir, pkl)
  output = tmp_path / 'r50_imagenet'
  assert cli.main([
      'import-weights', '--pkl', str(pkl), '--backbone-only',
      '--config', str(reference_forward_dir / 'config.yaml'),
      '--image-size', '128',
      '--output', str(output)]) == 0
  params = hyperparams.override_params_dict(
      exp_factory.get_exp_config('maskformer_coco_panoptic_d2'),
      str(output / 'params.yaml'), is_strict=True)
  assert params.task.init_checkpoint_modules == 'backbone'
  model = _task_and_model(params)
  features = model.backbone(raw_outputs.normalize_uint8(
      forward['image_rgb'][None], differential.PIXEL_MEAN,
      differential.PIXEL_STD))
  assert _close(np.transpose(features['5'].numpy(), (0, 3, 1, 2)),
                forward['res5'])
