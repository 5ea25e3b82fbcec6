"""Tests for the DETR transformer decoder against numpy."""

import numpy as np
import tensorflow as tf
import tf_keras

from trainer_module.modeling import transformer_decoder
from trainer_module.modeling.testing import layer_weights
from trainer_module.modeling.testing import np_attention
from trainer_module.modeling.testing import np_ffn
from trainer_module.modeling.testing import np_layer_norm


def np_decoder_layer(weights, tgt, memory, query_pos, pos):
  """DETR TransformerDecoderLayer.forward_post (eval mode)."""
  qk = tgt + query_pos
  tgt = np_layer_norm(tgt + np_attention(weights, 'self_attention', qk, qk, tgt),
                      weights['norm1/gamma'], weights['norm1/beta'])
  update = np_attention(weights, 'cross_attention', tgt + query_pos,
                        memory + pos, memory)
  tgt = np_layer_norm(tgt + update, weights['norm2/gamma'],
                      weights['norm2/beta'])
  return np_layer_norm(tgt + np_ffn(weights, 'ffn', tgt),
                       weights['norm3/gamma'], weights['norm3/beta'])


def test_decoder_matches_numpy():
  rng = np.random.default_rng(0)
  num_layers, num_queries, hidden = 3, 5, 16
  decoder = transformer_decoder.TransformerDecoder(
      num_layers=num_layers, num_queries=num_queries, hidden_size=hidden,
      num_heads=4, ffn_dim=24, dropout=0.1, name='decoder')
  memory = rng.normal(size=[2, 7, hidden]).astype(np.float32)
  pos = rng.normal(size=[7, hidden]).astype(np.float32)
  decoder(memory, pos)
  for variable in decoder.weights:
    variable.assign(rng.normal(scale=0.3, size=variable.shape))
  actual = decoder(memory, pos, training=False)
  assert actual.shape == (num_layers, 2, num_queries, hidden)
  assert actual.dtype == tf.float32

  weights = layer_weights(decoder)
  query_pos = np.broadcast_to(weights['query_embeddings'],
                              [2, num_queries, hidden])
  tgt = np.zeros_like(query_pos)
  for i in range(num_layers):
    layer = {k.split('/', 1)[1]: v for k, v in weights.items()
             if k.startswith(f'layer_{i}/')}
    tgt = np_decoder_layer(layer, tgt, memory, query_pos, pos[None])
    expected = np_layer_norm(tgt, weights['final_norm/gamma'],
                             weights['final_norm/beta'])
    np.testing.assert_allclose(actual[i].numpy(), expected, atol=2e-4)


def test_query_embeddings_init_like_nn_embedding():
  decoder = transformer_decoder.TransformerDecoder(
      num_layers=1, num_queries=100, hidden_size=64, num_heads=4, ffn_dim=8,
      dropout=0.0)
  decoder(tf.zeros([1, 4, 64]), tf.zeros([4, 64]))
  embeddings = decoder.query_embeddings.numpy()
  np.testing.assert_allclose(embeddings.std(), 1.0, rtol=0.05)
  np.testing.assert_allclose(embeddings.mean(), 0.0, atol=0.05)


def test_norms_float32_under_mixed_bfloat16():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    decoder = transformer_decoder.TransformerDecoder(
        num_layers=2, num_queries=3, hidden_size=8, num_heads=2, ffn_dim=8,
        dropout=0.0)
    outputs = decoder(tf.random.normal([1, 4, 8]), tf.random.normal([4, 8]))
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  norms = [m for m in decoder.submodules
           if isinstance(m, tf_keras.layers.LayerNormalization)]
  assert len(norms) == 2 * 3 + 1
  assert all(norm.compute_dtype == 'float32' for norm in norms)
  dense = [m for m in decoder.submodules
           if isinstance(m, tf_keras.layers.Dense)]
  assert dense and all(d.compute_dtype == 'bfloat16' for d in dense)
  assert outputs.dtype == tf.float32
