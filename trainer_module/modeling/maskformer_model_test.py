"""Tests for the MaskFormer model built from its config."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer_module.configs import maskformer_model as maskformer_cfg
from trainer_module.modeling import factory
from trainer_module.modeling import pixel_decoder

# Reference parameter count of MaskFormer R50 + 6 encoder layers (PyTorch).
REFERENCE_NUM_PARAMS = 45.04e6


def tiny_images(batch=2, seed=0):
  config = maskformer_cfg.maskformer_tiny_model()
  return tf.random.stateless_normal([batch] + config.input_size, [seed, 0])


@pytest.fixture(scope='module')
def tiny_model():
  model = factory.build_maskformer_model(maskformer_cfg.maskformer_tiny_model())
  model(tiny_images(), training=False)
  return model


def test_output_shapes(tiny_model):
  config = maskformer_cfg.maskformer_tiny_model()
  height, width, _ = config.input_size
  num_aux = config.transformer_decoder.num_layers - 1
  outputs = tiny_model(tiny_images(), training=True)
  expected = {
      'class_logits': (2, config.num_queries, config.num_classes + 1),
      'mask_logits': (2, height // 4, width // 4, config.num_queries),
      'aux_class_logits': (num_aux, 2, config.num_queries,
                           config.num_classes + 1),
      'aux_mask_logits': (num_aux, 2, height // 4, width // 4,
                          config.num_queries),
  }
  assert {k: tuple(v.shape) for k, v in outputs.items()} == expected
  assert all(v.dtype == tf.float32 for v in outputs.values())
  features = tiny_model.backbone(tiny_images(), training=False)
  assert sorted(features) == ['2', '3', '4', '5']
  assert features['2'].shape[1:3] == (height // 4, width // 4)
  assert features['5'].shape[1:3] == (height // 32, width // 32)


def test_without_deep_supervision():
  config = maskformer_cfg.maskformer_tiny_model()
  config.deep_supervision = False
  outputs = factory.build_maskformer_model(config)(tiny_images(batch=1))
  assert sorted(outputs) == ['class_logits', 'mask_logits']


def test_gradients_reach_every_trainable_variable(tiny_model):
  with tf.GradientTape() as tape:
    outputs = tiny_model(tiny_images(), training=True)
    loss = tf.add_n([tf.reduce_mean(tf.square(v)) for v in outputs.values()])
  variables = tiny_model.trainable_variables
  gradients = tape.gradient(loss, variables)
  missing = [v.name for v, g in zip(variables, gradients) if g is None]
  assert not missing
  assert all(np.isfinite(g.numpy()).all() for g in gradients)
  assert any('query_embeddings' in v.name for v in variables)


def test_backbone_batch_norm_is_frozen(tiny_model):
  norms = [m for m in tiny_model.backbone.submodules
           if isinstance(m, tf_keras.layers.BatchNormalization)]
  # Frozen as in the reference: inference-mode statistics, no trainable
  # scale/offset.
  assert norms and not any(norm.trainable for norm in norms)
  assert not any(norm.trainable_weights for norm in norms)
  before = [v.numpy() for v in tiny_model.backbone.non_trainable_variables]
  tiny_model(tiny_images(), training=True)
  after = [v.numpy() for v in tiny_model.backbone.non_trainable_variables]
  for old, new in zip(before, after):
    np.testing.assert_array_equal(old, new)


def test_compiles_with_xla(tiny_model):
  images = tiny_images()
  compiled = tf.function(lambda x: tiny_model(x, training=False),
                         jit_compile=True, autograph=False)
  actual = compiled(images)
  expected = tiny_model(images, training=False)
  for key, value in expected.items():
    np.testing.assert_allclose(actual[key].numpy(), value.numpy(), rtol=1e-4,
                               atol=1e-4, err_msg=key)


def test_mixed_bfloat16_keeps_norms_and_outputs_float32():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    model = factory.build_maskformer_model(
        maskformer_cfg.maskformer_tiny_model())
    outputs = model(tiny_images(), training=False)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  layers = list(model.submodules)
  norms = [m for m in layers if isinstance(
      m, (tf_keras.layers.LayerNormalization,
          pixel_decoder.GroupNormalization))]
  softmaxes = [m for m in layers if isinstance(m, tf_keras.layers.Softmax)]
  convs = [m for m in layers if isinstance(m, tf_keras.layers.Conv2D)]
  assert len(norms) == 2 * 2 + 3 * 3 + 1 + 7  # encoder, decoder, final, FPN
  assert len(softmaxes) == 2 + 2 * 3
  assert all(m.compute_dtype == 'float32' for m in norms + softmaxes)
  assert convs and all(m.compute_dtype == 'bfloat16' for m in convs)
  assert all(v.dtype == tf.float32 for v in outputs.values())
  assert all(np.isfinite(v.numpy()).all() for v in outputs.values())


def test_backbone_checkpoint_restores_into_model_backbone(tmp_path):
  config = maskformer_cfg.maskformer_tiny_model()
  source = factory.build_maskformer_model(config)
  source(tiny_images(batch=1))
  path = tf.train.Checkpoint(backbone=source.backbone).write(
      str(tmp_path / 'backbone'))
  target = factory.build_maskformer_model(config)
  target(tiny_images(batch=1))
  status = tf.train.Checkpoint(
      backbone=target.checkpoint_items['backbone']).read(path)
  status.assert_existing_objects_matched()
  for expected, actual in zip(source.backbone.weights, target.backbone.weights):
    np.testing.assert_array_equal(actual.numpy(), expected.numpy())


def expected_non_backbone_params(hidden, ffn, enc_layers, dec_layers, queries,
                                 num_classes, mask_dim, res5_channels,
                                 lateral_channels):
  """MaskFormer parameters outside the backbone, from the architecture."""
  attention = 4 * (hidden * hidden + hidden)
  ffn_params = hidden * ffn + ffn + ffn * hidden + hidden
  layer_norm = 2 * hidden
  group_norm = 2 * hidden
  encoder = enc_layers * (attention + ffn_params + 2 * layer_norm)
  decoder = dec_layers * (2 * attention + ffn_params + 3 * layer_norm)
  input_projection = res5_channels * hidden + hidden
  output_convs = 4 * (9 * hidden * hidden + group_norm)
  laterals = sum(c * hidden + group_norm for c in lateral_channels)
  mask_features = 9 * hidden * mask_dim + mask_dim
  heads = (hidden * (num_classes + 1) + num_classes + 1
           + 2 * (hidden * hidden + hidden) + hidden * mask_dim + mask_dim)
  return (encoder + decoder + layer_norm + queries * hidden + input_projection
          + output_convs + laterals + mask_features + heads)


def test_reference_parameter_count():
  config = maskformer_cfg.MaskFormerModel()
  # Parameter shapes do not depend on the image size: build on a small one.
  model = factory.build_maskformer_model(
      config, input_specs=tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]))
  model(tf.zeros([1, 64, 64, 3]))
  non_backbone = model.count_params() - model.backbone.count_params()
  assert non_backbone == expected_non_backbone_params(
      hidden=256, ffn=2048, enc_layers=6, dec_layers=6, queries=100,
      num_classes=133, mask_dim=256, res5_channels=2048,
      lateral_channels=(1024, 512, 256))
  moving_statistics = sum(
      int(np.prod(v.shape)) for v in model.non_trainable_variables
      if 'moving_' in v.name)
  # PyTorch counts BN affine parameters but not running statistics.
  num_params = model.count_params() - moving_statistics
  assert abs(num_params - REFERENCE_NUM_PARAMS) < 0.01 * REFERENCE_NUM_PARAMS
  assert abs(model.count_params() - REFERENCE_NUM_PARAMS) < (
      0.01 * REFERENCE_NUM_PARAMS)
