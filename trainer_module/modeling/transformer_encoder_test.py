"""Tests for the post-norm transformer encoder against numpy."""

import numpy as np
import tensorflow as tf

from trainer_module.modeling import transformer_encoder


def layer_weights(layer):
  """{'self_attention/query/kernel': array, ...} relative to `layer`."""
  return {v.name.split('/', 1)[1].rsplit(':', 1)[0]: v.numpy()
          for v in layer.weights}


def np_layer_norm(x, gamma, beta, eps=1e-5):
  mean = x.mean(-1, keepdims=True)
  var = x.var(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + eps) * gamma + beta


def np_attention(weights, prefix, query, key, value):
  """Multi-head attention on [B, N, C] arrays with EinsumDense weights."""
  def project(x, name):
    return (np.einsum('bnc,chd->bnhd', x, weights[f'{prefix}/{name}/kernel'])
            + weights[f'{prefix}/{name}/bias'])
  q, k, v = project(query, 'query'), project(key, 'key'), project(value,
                                                                   'value')
  logits = np.einsum('bnhd,bmhd->bhnm', q, k) / np.sqrt(q.shape[-1])
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  context = np.einsum('bhnm,bmhd->bnhd', probs, v)
  return (np.einsum('bnhd,hdc->bnc', context,
                    weights[f'{prefix}/attention_output/kernel'])
          + weights[f'{prefix}/attention_output/bias'])


def np_ffn(weights, prefix, x):
  hidden = np.maximum(
      x @ weights[f'{prefix}/linear1/kernel'] + weights[f'{prefix}/linear1/bias'],
      0.0)
  return hidden @ weights[f'{prefix}/linear2/kernel'] + weights[
      f'{prefix}/linear2/bias']


def np_encoder_layer(weights, src, pos):
  """DETR TransformerEncoderLayer.forward_post (eval mode)."""
  qk = src + pos
  src = np_layer_norm(src + np_attention(weights, 'self_attention', qk, qk, src),
                      weights['norm1/gamma'], weights['norm1/beta'])
  return np_layer_norm(src + np_ffn(weights, 'ffn', src),
                       weights['norm2/gamma'], weights['norm2/beta'])


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
