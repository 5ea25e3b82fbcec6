"""2-D sine positional encoding (DETR / MaskFormer)."""

import math
from typing import Union

import tensorflow as tf


def sine_position_embedding(
    height: Union[int, tf.Tensor],
    width: Union[int, tf.Tensor],
    num_pos_feats: int,
    temperature: float = 10000.0,
    scale: float = 2.0 * math.pi,
    eps: float = 1e-6,
) -> tf.Tensor:
  """Returns the float32 [height, width, 2 * num_pos_feats] sine encoding.

  Row and column indices 1..n are normalised by n (+ eps) and scaled by
  `scale`; each axis gives `num_pos_feats` channels of interleaved
  sin/cos at frequencies temperature ** (2 * (i // 2) / num_pos_feats). The
  y-axis channels come first, as in the reference (no padding mask).

  Args:
    height: Feature map height.
    width: Feature map width.
    num_pos_feats: Channels per axis; must be even.
    temperature: Frequency base.
    scale: Factor applied to the normalised coordinates.
    eps: Added to the normaliser.
  """
  if num_pos_feats % 2:
    raise ValueError(f'num_pos_feats must be even, got {num_pos_feats}.')
  dim = tf.range(num_pos_feats, dtype=tf.float32)
  dim_t = tf.pow(temperature, 2.0 * tf.math.floordiv(dim, 2.0) / num_pos_feats)

  def axis_encoding(size):
    size = tf.cast(size, tf.float32)
    coords = tf.range(1.0, size + 1.0, dtype=tf.float32)
    coords = coords / (size + eps) * scale
    angles = coords[:, None] / dim_t  # [n, F]
    # Even channels take sin, odd channels cos (interleaved).
    return tf.reshape(
        tf.stack([tf.sin(angles[:, 0::2]), tf.cos(angles[:, 1::2])], axis=-1),
        [-1, num_pos_feats])

  pos_y = axis_encoding(height)  # [H, F]
  pos_x = axis_encoding(width)  # [W, F]
  shape = tf.stack([tf.shape(pos_y)[0], tf.shape(pos_x)[0], num_pos_feats])
  return tf.concat([
      tf.broadcast_to(pos_y[:, None, :], shape),
      tf.broadcast_to(pos_x[None, :, :], shape),
  ], axis=-1)
