"""Tests of AdamW with a per-variable learning-rate multiplier."""

import re

import numpy as np
import tensorflow as tf

from official.modeling.optimization import optimizer_factory
from trainer_module import optimization
from trainer_module.configs import maskformer_model
from trainer_module.modeling import factory


def _numpy_adamw(param, grads, lr, weight_decay, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-8):
  """Decoupled-weight-decay Adam (TF's epsilon placement), step by step."""
  m = np.zeros_like(param)
  v = np.zeros_like(param)
  for step, grad in enumerate(grads, start=1):
    param = param - lr * weight_decay * param
    m = beta_1 * m + (1 - beta_1) * grad
    v = beta_2 * v + (1 - beta_2) * grad**2
    lr_t = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)
    param = param - lr_t * m / (np.sqrt(v) + epsilon)
  return param


def test_multiplier_scales_update_and_decay_of_matching_variables():
  rng = np.random.default_rng(0)
  init = rng.normal(size=[3, 2]).astype(np.float32)
  grads = [rng.normal(size=[3, 2]).astype(np.float32) * 10.0**k
           for k in range(-2, 2)]
  with tf.name_scope('backbone'):
    backbone_var = tf.Variable(init, name='kernel')
  with tf.name_scope('head'):
    head_var = tf.Variable(init, name='kernel')
  optimizer = optimization.AdamWeightDecayLrMultiplier(
      learning_rate=0.05, weight_decay_rate=0.1, epsilon=1e-8,
      gradient_clip_norm=0.0, lr_multiplier=0.1,
      lr_multiplier_pattern='^backbone/')
  for grad in grads:
    optimizer.apply_gradients([(tf.constant(grad), backbone_var),
                               (tf.constant(grad), head_var)])
  np.testing.assert_allclose(
      backbone_var.numpy(), _numpy_adamw(init, grads, 0.005, 0.1),
      rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(
      head_var.numpy(), _numpy_adamw(init, grads, 0.05, 0.1),
      rtol=1e-5, atol=1e-6)


def test_factory_builds_the_optimizer_from_its_config():
  config = optimization.OptimizationConfig({
      'optimizer': {'type': optimization.OPTIMIZER_TYPE,
                    optimization.OPTIMIZER_TYPE: {
                        'lr_multiplier': 0.1, 'lr_multiplier_pattern': 'a',
                        'global_clipnorm': 0.01, 'gradient_clip_norm': 0.0}},
      'learning_rate': {'type': 'constant',
                        'constant': {'learning_rate': 1e-4}},
  })
  opt_factory = optimizer_factory.OptimizerFactory(config)
  optimizer = opt_factory.build_optimizer(opt_factory.build_learning_rate())
  assert isinstance(optimizer, optimization.AdamWeightDecayLrMultiplier)
  assert optimizer.lr_multiplier == 0.1
  assert optimizer.learning_rate_multiplier('xay') == 0.1
  assert optimizer.learning_rate_multiplier('xyz') == 1.0
  assert optimizer.global_clipnorm == 0.01


def test_backbone_pattern_selects_exactly_the_backbone_variables():
  model = factory.build_maskformer_model(
      maskformer_model.maskformer_tiny_model())
  model(tf.zeros([1] + list(model.backbone.input_shape[1:])))
  pattern = re.compile(optimization.BACKBONE_VARIABLES_PATTERN)
  selected = {variable.name for variable in model.trainable_variables
              if pattern.search(variable.name)}
  backbone = {variable.name for variable in model.backbone.trainable_variables}
  assert backbone
  assert selected == backbone
