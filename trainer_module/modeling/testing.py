"""Test helpers: numpy re-implementations of DETR's layers (the references
that the modeling tests compare the Keras layers with) and a layer's weights
by name.

Used by the `*_test.py` files of `trainer_module/modeling`.
"""

import math

import numpy as np


def detr_sine_embedding(height, width, num_pos_feats, temperature=10000.0):
  """DETR's PositionEmbeddingSine(normalize=True) with an all-valid mask, HWC."""
  not_mask = np.ones([height, width])
  y_embed = np.cumsum(not_mask, axis=0)
  x_embed = np.cumsum(not_mask, axis=1)
  eps, scale = 1e-6, 2 * math.pi
  y_embed = y_embed / (y_embed[-1:, :] + eps) * scale
  x_embed = x_embed / (x_embed[:, -1:] + eps) * scale
  dim_t = np.arange(num_pos_feats)
  dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
  pos_x = x_embed[:, :, None] / dim_t
  pos_y = y_embed[:, :, None] / dim_t
  pos_x = np.stack([np.sin(pos_x[:, :, 0::2]), np.cos(pos_x[:, :, 1::2])],
                   axis=3).reshape(height, width, num_pos_feats)
  pos_y = np.stack([np.sin(pos_y[:, :, 0::2]), np.cos(pos_y[:, :, 1::2])],
                   axis=3).reshape(height, width, num_pos_feats)
  return np.concatenate([pos_y, pos_x], axis=2)


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
