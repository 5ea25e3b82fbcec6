"""Tests for the post-norm transformer encoder against numpy."""

import numpy as np
import tensorflow as tf

from trainer_module.modeling import transformer_encoder
from trainer_module.modeling.testing import layer_weights
from trainer_module.modeling.testing import np_encoder_layer


def randomise(layer, rng):
  """Random weights (including norms) so that every parameter matters."""
  for variable in layer.weights:
    variable.assign(rng.normal(scale=0.3, size=variable.shape))


def test_encoder_layer_matches_numpy():
  rng = np.random.default_rng(0)
  layer = transformer_encoder.TransformerEncoderLayer(
      hidden_size=16, num_heads=4, ffn_dim=24, dropout=0.1, name='encoder')
  src = rng.normal(size=[2, 6, 16]).astype(np.float32)
  pos = rng.normal(size=[6, 16]).astype(np.float32)
  layer(src, pos)
  randomise(layer, rng)
  actual = layer(src, pos, training=False)
  expected = np_encoder_layer(layer_weights(layer), src, pos[None])
  assert actual.dtype == tf.float32
  np.testing.assert_allclose(actual.numpy(), expected, atol=1e-4)


def test_dropout_only_in_training():
  layer = transformer_encoder.TransformerEncoderLayer(
      hidden_size=16, num_heads=4, ffn_dim=24, dropout=0.5)
  src = tf.random.normal([2, 6, 16])
  pos = tf.random.normal([6, 16])
  np.testing.assert_allclose(layer(src, pos, training=False).numpy(),
                             layer(src, pos, training=False).numpy())
  assert not np.allclose(layer(src, pos, training=True).numpy(),
                         layer(src, pos, training=False).numpy())


def test_encoder_stacks_layers():
  rng = np.random.default_rng(1)
  encoder = transformer_encoder.TransformerEncoder(
      num_layers=2, hidden_size=8, num_heads=2, ffn_dim=16, dropout=0.0,
      name='stack')
  src = rng.normal(size=[1, 5, 8]).astype(np.float32)
  pos = rng.normal(size=[5, 8]).astype(np.float32)
  actual = encoder(src, pos).numpy()
  weights = layer_weights(encoder)
  expected = src
  for i in range(2):
    layer = {k.split('/', 1)[1]: v for k, v in weights.items()
             if k.startswith(f'layer_{i}/')}
    expected = np_encoder_layer(layer, expected, pos[None])
  np.testing.assert_allclose(actual, expected, atol=1e-4)
