"""Tests of the detectron2-convention ResNet (parity: checkpoints tests)."""

import numpy as np
import tensorflow as tf
import tf_keras

from official.vision.modeling.backbones import factory
from trainer_module.configs import backbones
from trainer_module.modeling.backbones import detectron2_resnet


def _small_config(**kwargs):
  return backbones.Backbone(
      type='detectron2_resnet',
      detectron2_resnet=backbones.Detectron2ResNet(
          stem_out_channels=8, res2_out_channels=16, width_per_group=4,
          **kwargs))


def test_factory_builds_endpoints_with_strides_and_widths():
  backbone = factory.build_backbone(
      tf_keras.layers.InputSpec(shape=[None, 64, 64, 3]), _small_config(),
      norm_activation_config=None)
  assert isinstance(backbone, detectron2_resnet.Detectron2ResNet)
  endpoints = backbone(tf.random.normal([2, 64, 64, 3]))
  assert {key: value.shape.as_list() for key, value in endpoints.items()} == {
      '2': [2, 16, 16, 16], '3': [2, 8, 8, 32], '4': [2, 4, 4, 64],
      '5': [2, 2, 2, 128]}
  assert backbone.output_channels == {'2': 16, '3': 32, '4': 64, '5': 128}
  # ResNet-50: 53 convolutions, no bias, every FrozenBN statistic frozen.
  kernels = [v for v in backbone.trainable_variables if 'kernel' in v.name]
  assert len(kernels) == len(backbone.trainable_variables) == 53
  assert len(backbone.non_trainable_variables) == 53 * 4


def test_freeze_at_freezes_stem_and_res2():
  backbone = detectron2_resnet.Detectron2ResNet(
      _small_config(freeze_at=2).detectron2_resnet)
  backbone(tf.zeros([1, 32, 32, 3]))
  trainable = ' '.join(v.name for v in backbone.trainable_variables)
  assert 'stem_conv1/' not in trainable and 'res2_' not in trainable
  assert 'res3_0/conv1/' in trainable


def test_frozen_batch_norm_is_pytorch_formula():
  norm = detectron2_resnet.FrozenBatchNorm(epsilon=1e-5)
  inputs = tf.random.normal([1, 2, 2, 3])
  norm(inputs)
  rng = np.random.default_rng(0)
  values = [rng.uniform(0.5, 1.5, 3).astype(np.float32) for _ in range(4)]
  for variable, value in zip(
      (norm.gamma, norm.beta, norm.moving_mean, norm.moving_variance), values):
    variable.assign(value)
  gamma, beta, mean, var = values
  expected = (inputs.numpy() - mean) / np.sqrt(var + 1e-5) * gamma + beta
  np.testing.assert_allclose(norm(inputs).numpy(), expected, rtol=1e-5,
                             atol=1e-6)


def test_strided_convs_pad_symmetrically():
  """A 3×3/2 conv of an even-sized map pads 1 on every side (PyTorch), not
  (0, 1) as TF "SAME": the first output sees the zero padding row/col."""
  layer = detectron2_resnet.ConvFrozenBN(1, 3, strides=2)
  inputs = tf.ones([1, 4, 4, 1])
  layer(inputs)
  layer.conv.kernel.assign(tf.ones([3, 3, 1, 1]))
  outputs = layer(inputs).numpy()[0, :, :, 0]
  np.testing.assert_allclose(outputs, [[4.0, 6.0], [6.0, 9.0]], rtol=1e-5)
