"""Tests for the sine positional encoding against a numpy DETR re-implementation."""

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.modeling import position_embedding
from trainer_module.modeling.testing import detr_sine_embedding


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
