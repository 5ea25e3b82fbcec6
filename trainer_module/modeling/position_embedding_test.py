"""Tests for the sine positional encoding against a numpy DETR re-implementation."""

import math

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.modeling import position_embedding


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


@pytest.mark.parametrize('height,width,num_pos_feats',
                         [(5, 7, 16), (20, 20, 128), (1, 3, 2)])
def test_matches_detr(height, width, num_pos_feats):
  actual = position_embedding.sine_position_embedding(height, width,
                                                      num_pos_feats)
  assert actual.dtype == tf.float32
  np.testing.assert_allclose(actual.numpy(),
                             detr_sine_embedding(height, width, num_pos_feats),
                             atol=2e-5)


def test_dynamic_sizes_in_graph():
  @tf.function(input_signature=[tf.TensorSpec([None, None, 8])])
  def embed(features):
    shape = tf.shape(features)
    return position_embedding.sine_position_embedding(shape[0], shape[1], 4)

  actual = embed(tf.zeros([3, 6, 8]))
  np.testing.assert_allclose(actual.numpy(), detr_sine_embedding(3, 6, 4),
                             atol=2e-5)


def test_odd_num_pos_feats_fails():
  with pytest.raises(ValueError, match='num_pos_feats'):
    position_embedding.sine_position_embedding(4, 4, 3)
