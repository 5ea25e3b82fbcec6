"""Tests for the DETR-style multi-head attention layer."""

import math

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from trainer_module.modeling import attention


def test_initialisation_matches_torch_multihead_attention():
  hidden_size = 64
  layer = attention.MultiHeadAttention(hidden_size, num_heads=4)
  inputs = tf.zeros([1, 3, hidden_size])
  layer(inputs, inputs)
  weights = {v.name.split('/', 1)[1]: v.numpy() for v in layer.weights}
  # Packed q/k/v projection: Xavier over [3d, d]; output: Xavier over [d, d].
  # The initializer draws float32 values within the float32 bound, which can
  # round above the float64 one.
  in_bound = np.float32(math.sqrt(6.0 / (4 * hidden_size)))
  out_bound = np.float32(math.sqrt(6.0 / (2 * hidden_size)))
  for name in ('query', 'key', 'value'):
    kernel = weights[f'{name}/kernel:0']
    assert kernel.shape == (hidden_size, 4, hidden_size // 4)
    assert np.abs(kernel).max() <= in_bound
    # A uniform U(±b) has std b/sqrt(3); 4096 samples pin it to a few percent.
    np.testing.assert_allclose(kernel.std(), in_bound / math.sqrt(3), rtol=0.1)
    np.testing.assert_array_equal(weights[f'{name}/bias:0'], 0.0)
  kernel = weights['attention_output/kernel:0']
  assert np.abs(kernel).max() <= out_bound
  np.testing.assert_allclose(kernel.std(), out_bound / math.sqrt(3), rtol=0.1)
  np.testing.assert_array_equal(weights['attention_output/bias:0'], 0.0)


def test_softmax_is_float32_under_mixed_bfloat16():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    layer = attention.MultiHeadAttention(16, num_heads=2)
    inputs = tf.random.normal([2, 5, 16])
    outputs, scores = layer(inputs, inputs, return_attention_scores=True)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert outputs.dtype == tf.bfloat16
  assert scores.dtype == tf.float32
  np.testing.assert_allclose(tf.reduce_sum(scores, -1).numpy(), 1.0,
                             atol=1e-6)


def test_invalid_heads_fail():
  with pytest.raises(ValueError, match='num_heads'):
    attention.MultiHeadAttention(30, num_heads=8)
