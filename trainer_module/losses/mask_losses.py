"""Focal and dice losses of predicted/target mask pairs at full resolution.

The criterion (`maskformer_losses`) compares mask logits predicted at h×w with
targets at H×W = s·h × s·w (the reference trains with s = 4): the logits are
upsampled with half-pixel bilinear interpolation, which is
`F.interpolate(mode='bilinear', align_corners=False)` in the reference and
`tf.image.resize(..., 'bilinear')` in TensorFlow.

`upsample_bilinear` computes that interpolation for an integer stride s as two
separable passes of fixed 2-tap filters on shifted copies of the input: output
row s·i + r is a blend of input rows i and i ± 1 (edge rows repeated) with
weights that depend on r only. The values are the resize's (up to float32
rounding). Under XLA `tf.image.resize` lowers to a gather whose index/weight
tensor holds 9 values per output pixel per channel; these passes hold only
the output.

`chunked_mask_loss_sums` is the static-shape (XLA, TPU) form: every slot of
every image has a pair, so the full-resolution work is N·H·W per image. It
processes the slots in fixed-size chunks inside a `tf.while_loop` and
computes the gradient with a second loop that recomputes each chunk, so only
one chunk's [B, chunk, H, W] intermediates are ever alive, forward or
backward, whatever N is.
"""

from typing import Sequence, Tuple

import numpy as np
import tensorflow as tf

from trainer_module.losses import maskformer_matcher

_FOCAL_ALPHA = maskformer_matcher.FOCAL_ALPHA
# Slots per chunk of the static-shape path: its full-resolution intermediates
# are [B, SLOT_CHUNK, H, W] (B·H·W·40 bytes each in float32).
SLOT_CHUNK = 10


def _bilinear_taps(stride: int) -> Sequence[Tuple[int, float, float]]:
  """(neighbour offset, weight of the centre row, weight of the neighbour).

  Output row s·i + r of a half-pixel upsampling by s samples input row
  i + d with d = (r + 0.5) / s - 0.5 in (-0.5, 0.5): a blend of row i and
  row i - 1 (d < 0) or i + 1 (d > 0).
  """
  taps = []
  for r in range(stride):
    offset = (r + 0.5) / stride - 0.5
    taps.append((-1 if offset < 0 else 1, 1.0 - abs(offset), abs(offset)))
  return taps


def _upsample_axis(values: tf.Tensor, stride: int, axis: int) -> tf.Tensor:
  """Half-pixel bilinear upsampling of `values` by `stride` along `axis`."""
  size = values.shape[axis]

  def rows(begin, end):
    return values[(slice(None),) * axis + (slice(begin, end),)]

  # Row i - 1 and row i + 1 of every row i, the edge rows repeated (as the
  # resize clamps its source coordinates to the image). Slices, not gathers.
  previous = tf.concat([rows(0, 1), rows(0, size - 1)], axis=axis)
  following = tf.concat([rows(1, size), rows(size - 1, size)], axis=axis)
  phases = [centre * values + side * (previous if shift < 0 else following)
            for shift, centre, side in _bilinear_taps(stride)]
  # [..., size, stride, ...] -> [..., size * stride, ...]: row s·i + r.
  stacked = tf.stack(phases, axis=axis + 1)
  shape = values.shape.as_list()
  shape[axis] = size * stride
  shape = [-1 if dim is None else dim for dim in shape]
  return tf.reshape(stacked, shape)


def upsample_bilinear(logits: tf.Tensor, stride: int,
                      axes: Tuple[int, int] = (1, 2)) -> tf.Tensor:
  """Upsamples the two spatial `axes` by `stride` (half-pixel bilinear).

  [P, h, w, C] -> [P, s·h, s·w, C] with the default axes, as
  `tf.image.resize(bilinear)`; (2, 3) for [P, C, h, w].
  """
  if stride == 1:
    return logits
  return _upsample_axis(_upsample_axis(logits, stride, axes[0]), stride,
                        axes[1])


def mask_losses_per_pair(logits: tf.Tensor, targets: tf.Tensor,
                         pixel_weights: tf.Tensor, num_pixels: tf.Tensor,
                         stride: int) -> Tuple[tf.Tensor, tf.Tensor]:
  """Focal and dice loss of predicted/target mask pairs along axis 1.

  The pixels are the two minor axes, the layout a TPU tiles without padding
  when W is a multiple of 128 and H of 8.

  Args:
    logits: float32 [P, C, h, w] mask logits of C pairs per leading index.
    targets: [P, C, H, W] binary target masks, H = s·h, W = s·w.
    pixel_weights: float32 [P, 1 or C, H, W], 1 on valid pixels.
    num_pixels: float32 [P, 1 or C], valid pixels (at least 1).
    stride: s; the logits are upsampled by it (half-pixel bilinear).

  Returns:
    float32 [P, C] focal losses (mean over valid pixels) and dice losses.
  """
  logits = upsample_bilinear(logits, stride, axes=(2, 3))
  targets = tf.cast(targets, tf.float32) * pixel_weights
  prob = tf.sigmoid(logits)
  # Binary targets: BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x), so
  # focal = alpha_t · (1 - p_t)² · softplus(-x_t) with x_t = ±x and p_t = p or
  # 1 - p: the same values as selecting between the two branches, with one
  # softplus and one square over the full-size pairs instead of two each.
  positive = targets > 0.0
  focal = (tf.where(positive, _FOCAL_ALPHA, 1.0 - _FOCAL_ALPHA)
           * tf.square(tf.where(positive, 1.0 - prob, prob))
           * tf.nn.softplus(tf.where(positive, -logits, logits)))
  focal = tf.reduce_sum(focal * pixel_weights, axis=[2, 3]) / num_pixels
  prob *= pixel_weights
  dice = 1.0 - (2.0 * tf.reduce_sum(prob * targets, axis=[2, 3]) + 1.0) / (
      tf.reduce_sum(prob, axis=[2, 3]) +
      tf.reduce_sum(targets, axis=[2, 3]) + 1.0)
  return focal, dice


def chunked_mask_loss_sums(logits: tf.Tensor, gt_masks: tf.Tensor,
                           pixel_weights: tf.Tensor, num_pixels: tf.Tensor,
                           pair_weight: tf.Tensor, stride: int,
                           chunk: int = SLOT_CHUNK
                          ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Σ pair_weight·focal and Σ pair_weight·dice over all (image, slot) pairs.

  Args:
    logits: float32 [B, h, w, N]: the predicted mask of each slot's pair.
    gt_masks: the targets at H×W: [B, H, W, N] binary masks or an int
      [B, H, W] slot map (mask j = `map == j`).
    pixel_weights: float32 [B, H, W, 1], 1 on valid pixels.
    num_pixels: float32 [B], valid pixels per image (at least 1).
    pair_weight: float32 [B, N], 0 for the slots that do not count.
    stride: s = H / h.
    chunk: slots per loop iteration (at most N); chunk k covers slots
      [k·chunk, (k + 1)·chunk), the last one shifted back to end at N with
      the slots it shares with the previous chunk weighted 0.

  Returns:
    Two float32 scalars; differentiable with respect to `logits` only.

  Raises:
    ValueError: if `chunk` < 1.
  """
  if chunk < 1:
    raise ValueError(f'The slot chunk must be at least 1, got {chunk}.')
  batch, height, width, num_slots = logits.shape.as_list()
  # Slots before pixels (see `mask_losses_per_pair`): [B, N, h, w].
  logits = tf.transpose(logits, [0, 3, 1, 2])
  chunk = min(chunk, num_slots)
  num_chunks = -(-num_slots // chunk)
  starts = np.array([min(k * chunk, num_slots - chunk)
                     for k in range(num_chunks)], np.int32)
  slot_of = starts[:, None] + np.arange(chunk)  # [K, chunk]
  counted = slot_of >= chunk * np.arange(num_chunks)[:, None]
  chunk_weights = (tf.gather(pair_weight, slot_of, axis=1) *
                   counted.astype(np.float32))  # [B, K, chunk]
  num_pixels = num_pixels[:, tf.newaxis]
  pixel_weights = tf.transpose(pixel_weights, [0, 3, 1, 2])  # [B, 1, H, W]
  slot_map = gt_masks.shape.rank == 3
  if slot_map:
    gt_masks = tf.cast(gt_masks, tf.int32)[:, tf.newaxis]

  def chunk_sums(k, chunk_logits):
    start = tf.gather(starts, k)
    if slot_map:
      slots = start + tf.range(chunk, dtype=tf.int32)
      targets = tf.equal(gt_masks, slots[:, tf.newaxis, tf.newaxis])
    else:
      targets = tf.transpose(
          tf.slice(gt_masks, tf.stack([0, 0, 0, start]), [-1, -1, -1, chunk]),
          [0, 3, 1, 2])
    focal, dice = mask_losses_per_pair(chunk_logits, targets, pixel_weights,
                                       num_pixels, stride)
    weights = tf.gather(chunk_weights, k, axis=1)
    return tf.reduce_sum(focal * weights), tf.reduce_sum(dice * weights)

  def logits_of(k):
    start = tf.gather(starts, k)
    return tf.slice(logits, tf.stack([0, start, 0, 0]),
                    [batch if batch is not None else -1, chunk, height, width])

  @tf.custom_gradient
  def sums(unused_logits):
    del unused_logits  # `logits` is read from the closure, chunk by chunk.

    def forward(k, focal_sum, dice_sum):
      focal, dice = chunk_sums(k, logits_of(k))
      return k + 1, focal_sum + focal, dice_sum + dice

    _, focal_sum, dice_sum = tf.while_loop(
        lambda k, *_: k < num_chunks, forward,
        (tf.constant(0), tf.constant(0.0), tf.constant(0.0)))

    def gradient(focal_grad, dice_grad):
      focal_grad = 0.0 if focal_grad is None else focal_grad
      dice_grad = 0.0 if dice_grad is None else dice_grad

      def backward(k, chunk_grads):
        chunk_logits = logits_of(k)
        with tf.GradientTape() as tape:
          tape.watch(chunk_logits)
          focal, dice = chunk_sums(k, chunk_logits)
          total = focal_grad * focal + dice_grad * dice
        return k + 1, chunk_grads.write(k, tape.gradient(total, chunk_logits))

      _, chunk_grads = tf.while_loop(
          lambda k, _: k < num_chunks, backward,
          (tf.constant(0),
           tf.TensorArray(tf.float32, size=num_chunks,
                          element_shape=[batch, chunk, height, width])))
      # [K, B, chunk, h, w] -> [B, K·chunk, h, w] -> slot j's own row.
      stacked = tf.transpose(chunk_grads.stack(), [1, 0, 2, 3, 4])
      stacked = tf.reshape(stacked, [-1, num_chunks * chunk, height, width])
      row = [(j // chunk) * chunk + j - starts[j // chunk]
             for j in range(num_slots)]
      if row == list(range(num_slots)):
        return stacked
      return tf.gather(stacked, row, axis=1)

    return (focal_sum, dice_sum), gradient

  return sums(logits)
