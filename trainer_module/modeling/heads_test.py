"""Tests for the MaskFormer class/mask heads against numpy."""

import math

import numpy as np
import tensorflow as tf

from trainer_module.modeling import heads
from trainer_module.modeling.testing import layer_weights


def test_heads_match_numpy():
  rng = np.random.default_rng(0)
  num_layers, batch, num_queries, hidden, mask_dim, num_classes = 2, 3, 4, 8, 5, 6
  layer = heads.MaskFormerHeads(num_classes, hidden, mask_dim, name='heads')
  queries = rng.normal(size=[num_layers, batch, num_queries, hidden]).astype(
      np.float32)
  mask_features = rng.normal(size=[batch, 7, 9, mask_dim]).astype(np.float32)
  class_logits, mask_logits = layer(queries, mask_features)
  assert class_logits.shape == (num_layers, batch, num_queries,
                                num_classes + 1)
  assert mask_logits.shape == (num_layers, batch, 7, 9, num_queries)

  w = layer_weights(layer)
  expected_class = queries @ w['class_head/kernel'] + w['class_head/bias']
  embed = np.maximum(queries @ w['mask_mlp_0/kernel'] + w['mask_mlp_0/bias'], 0)
  embed = np.maximum(embed @ w['mask_mlp_1/kernel'] + w['mask_mlp_1/bias'], 0)
  embed = embed @ w['mask_mlp_2/kernel'] + w['mask_mlp_2/bias']
  expected_masks = np.einsum('lbqc,bhwc->lbhwq', embed, mask_features)
  np.testing.assert_allclose(class_logits.numpy(), expected_class, atol=1e-5)
  np.testing.assert_allclose(mask_logits.numpy(), expected_masks, atol=1e-4)


def test_initialisation_is_torch_linear_default():
  hidden = 256
  layer = heads.MaskFormerHeads(133, hidden, 256)
  layer(tf.zeros([1, 1, 2, hidden]), tf.zeros([1, 2, 2, 256]))
  bound = 1.0 / math.sqrt(hidden)
  for variable in layer.weights:
    values = variable.numpy()
    assert np.abs(values).max() <= bound, variable.name
    if values.size > 1000:
      np.testing.assert_allclose(values.std(), bound / math.sqrt(3), rtol=0.1)
