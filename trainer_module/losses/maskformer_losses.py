"""MaskFormer set criterion: CE, focal and dice losses of matched queries.

Follows the reference PyTorch MaskFormer `SetCriterion` (Cheng et al. 2021)
for one decoder output, with static shapes for XLA; the queries are matched to
the targets by `maskformer_matcher` (the reference's `HungarianMatcher`):

* Targets come as fixed-size slots [B, N] with a `gt_valid` flag; padding
  slots are never matched and never counted.
* Targets may have a higher resolution H×W than the predicted mask logits
  h×w (H = s·h, W = s·w for an integer stride s; the reference trains with
  s = 4). Then, as the reference: the matching runs at h×w on the targets
  subsampled like PyTorch's legacy `F.interpolate(mode='nearest')`
  (`targets[:, ::s, ::s]`), and the focal and dice losses compare the
  matched predictions, upsampled to H×W with half-pixel bilinear
  interpolation (`F.interpolate(mode='bilinear', align_corners=False)` =
  `tf.image.resize(..., 'bilinear')`, computed by
  `mask_losses.upsample_bilinear`), with the full-resolution targets.
  Only the matched predictions are upsampled (see `static_shapes`); the
  static-shape path bounds its full-resolution memory by a chunk of slots.
* An optional `pixel_valid` mask (at the targets' resolution) excludes padded
  pixels from the matching costs, the focal loss (mean over valid pixels
  only) and the dice loss. The reference has no such mask: it is our
  addition for padded static-size batches, and with an all-ones mask the
  results are the reference ones.

All computations run in float32 (bfloat16 inputs are cast) and compile with
`tf.function(jit_compile=True)`.

Distributed training: `num_masks` (the loss_mask / loss_dice normaliser) is
the number of valid targets summed over all replicas and divided by the number
of replicas, as in the reference (`all_reduce` then `/ world_size`). The losses
returned are per-replica losses. TF Model Garden's `base_task.Task.train_step`
divides the per-replica loss by `num_replicas_in_sync` before taking gradients
and the optimizer then sums gradients over replicas, so the applied gradient
is the mean over replicas of the per-replica gradients, which is what PyTorch
DDP does in the reference. A task that overrides `train_step` must keep that
`loss / num_replicas_in_sync` scaling (and must not divide the losses
returned here by anything else); metrics should report the unscaled values.
"""

from typing import Mapping, Optional, Tuple

import tensorflow as tf
from tensorflow.python.ops import control_flow_util

from trainer_module.losses import mask_losses
from trainer_module.losses import maskformer_matcher


def _global_num_masks(gt_valid: tf.Tensor) -> tf.Tensor:
  """Number of valid targets averaged over replicas, at least 1 (float32)."""
  num_masks = tf.reduce_sum(tf.cast(gt_valid, tf.float32))
  replica_context = tf.distribute.get_replica_context()
  if replica_context is not None:
    num_masks = replica_context.all_reduce(
        tf.distribute.ReduceOp.SUM, num_masks)
    num_masks /= float(replica_context.num_replicas_in_sync)
  return tf.maximum(num_masks, 1.0)


def target_stride(mask_logits: tf.Tensor, gt_masks: tf.Tensor) -> int:
  """The integer ratio s of the targets' to the predictions' resolution.

  Raises:
    ValueError: if the target size is not s times the prediction size.
  """
  height, width = mask_logits.shape[1:3]
  target_height, target_width = gt_masks.shape[1:3]
  stride = target_height // height
  if (stride < 1 or target_height != stride * height or
      target_width != stride * width):
    raise ValueError(
        f'The targets ({target_height}x{target_width}) must be an integer '
        f'multiple s >= 1 of the mask logits ({height}x{width}) in both '
        'dimensions.')
  return stride


def _slot_masks(gt_masks: tf.Tensor, num_slots: int) -> tf.Tensor:
  """[B, H, W, N] masks of either target form (bool for a slot map)."""
  if gt_masks.shape.rank == 4:
    return gt_masks
  return tf.equal(tf.cast(gt_masks, tf.int32)[..., tf.newaxis],
                  tf.range(num_slots, dtype=tf.int32))


def _pair_targets(gt_masks: tf.Tensor, pairs: tf.Tensor) -> tf.Tensor:
  """[M, H, W] target masks of M (image, slot) int64 pairs."""
  if gt_masks.shape.rank == 4:
    return tf.gather_nd(tf.transpose(gt_masks, [0, 3, 1, 2]), pairs)
  return tf.equal(tf.gather(tf.cast(gt_masks, tf.int32), pairs[:, 0]),
                  tf.cast(pairs[:, 1], tf.int32)[:, tf.newaxis, tf.newaxis])


def _in_xla_or_tpu() -> bool:
  """Whether the caller is being compiled with XLA (jit_compile, TPU)."""
  if isinstance(tf.distribute.get_strategy(),
                (tf.distribute.TPUStrategy,
                 tf.distribute.experimental.TPUStrategy)):
    return True
  # TF has no public test for "inside tf.function(jit_compile=True)"; Keras
  # uses the same check (tf_keras.src.utils.control_flow_util).
  return control_flow_util.GraphOrParentsInXlaContext(
      tf.compat.v1.get_default_graph())


def _matched_mask_losses(mask_logits: tf.Tensor, gt_masks: tf.Tensor,
                         pixel_weights: tf.Tensor, matched_query: tf.Tensor,
                         static_shapes: bool, stride: int, slot_chunk: int
                        ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sums of the focal and dice losses over the matched (query, slot) pairs.

  Static shapes (XLA, TPU): the matched query's logits of every slot,
  [B, h, w, N], are compared slot chunk by slot chunk
  (`mask_losses.chunked_mask_loss_sums`), unmatched slots weighted 0.
  Otherwise only the M matched pairs are gathered ([M, h, w, 1], M known at
  run time), as the reference does: about N / M times less work.
  """
  num_pixels = maskformer_matcher.num_valid_pixels(pixel_weights)  # [B]
  is_matched = matched_query >= 0
  if static_shapes:
    return mask_losses.chunked_mask_loss_sums(
        tf.gather(mask_logits, tf.maximum(matched_query, 0), axis=3,
                  batch_dims=1),
        gt_masks, pixel_weights, num_pixels,
        pair_weight=tf.cast(is_matched, tf.float32), stride=stride,
        chunk=slot_chunk)
  pairs = tf.where(is_matched)  # [M, 2]: (image, slot).
  image = pairs[:, 0]
  query = tf.gather_nd(matched_query, pairs)
  logits = tf.gather_nd(tf.transpose(mask_logits, [0, 3, 1, 2]),
                        tf.stack([image, tf.cast(query, tf.int64)], axis=1))
  targets = _pair_targets(gt_masks, pairs)
  focal, dice = mask_losses.mask_losses_per_pair(
      logits[:, tf.newaxis], targets[:, tf.newaxis],
      tf.transpose(tf.gather(pixel_weights, image), [0, 3, 1, 2]),
      tf.gather(num_pixels, image)[:, None], stride)
  return tf.reduce_sum(focal), tf.reduce_sum(dice)


def maskformer_losses(class_logits: tf.Tensor,
                      mask_logits: tf.Tensor,
                      gt_classes: tf.Tensor,
                      gt_masks: tf.Tensor,
                      gt_valid: tf.Tensor,
                      *,
                      no_object_weight: float,
                      class_weight: float = 1.0,
                      mask_weight: float = 20.0,
                      dice_weight: float = 1.0,
                      pixel_valid: Optional[tf.Tensor] = None,
                      static_shapes: Optional[bool] = None,
                      slot_chunk: int = mask_losses.SLOT_CHUNK
                     ) -> Mapping[str, tf.Tensor]:
  """Computes the MaskFormer losses of one decoder output.

  The class/mask/dice weights are used for the matching cost only; the
  returned losses are unweighted.

  Args:
    class_logits: [B, Q, K+1] class logits, index K = no object.
    mask_logits: [B, h, w, Q] mask logits.
    gt_classes: int [B, N] target class ids in [0, K).
    gt_masks: the targets at H×W, H = s·h and W = s·w for an integer stride
      s >= 1: [B, H, W, N] binary masks (any dtype), or an int [B, H, W]
      slot map (mask j = `map == j`, −1 = no slot) for non-overlapping
      targets, which avoids dense [B, H, W, N] tensors where possible.
    gt_valid: bool [B, N]; False marks padding slots.
    no_object_weight: CE weight of queries labelled "no object".
    class_weight: matching weight of the class cost.
    mask_weight: matching weight of the focal cost.
    dice_weight: matching weight of the dice cost.
    pixel_valid: optional [B, H, W] 0/1 mask of real (non-padded) pixels.
    static_shapes: True compares the matched query's logits of all N slots
      (static shapes, for XLA/TPU), `slot_chunk` slots at a time; False only
      those of the matched pairs (dynamic shapes, the reference's work). Same
      results. Default: True when compiled with XLA or under a TPUStrategy.
    slot_chunk: slots per chunk of the static-shape path; its
      full-resolution intermediates are [B, slot_chunk, H, W].

  Returns:
    Dict of float32 scalars:
      loss_ce: Σ w·CE / Σ w over all queries of the batch; unmatched queries
        target class K with weight `no_object_weight`, matched ones their
        target's class with weight 1.
      loss_mask: sigmoid focal loss (alpha 0.25, gamma 2) at H×W, mean over
        valid pixels, summed over matched pairs, divided by num_masks.
      loss_dice: 1 - (2Σst + 1) / (Σs + Σt + 1) at H×W summed over matched
        pairs, divided by num_masks.
    num_masks is the global number of valid targets divided by the number of
    replicas (at least 1); see the module docstring for how the per-replica
    losses must be combined.

  Raises:
    ValueError: if H×W is not an integer multiple of h×w.
  """
  class_logits = tf.cast(class_logits, tf.float32)
  mask_logits = tf.cast(mask_logits, tf.float32)
  gt_classes = tf.cast(gt_classes, tf.int32)
  gt_masks = tf.convert_to_tensor(gt_masks)
  gt_valid = tf.cast(gt_valid, tf.bool)
  num_queries = class_logits.shape[1]
  no_object_class = class_logits.shape[2] - 1
  stride = target_stride(mask_logits, gt_masks)
  if static_shapes is None:
    static_shapes = _in_xla_or_tpu()

  # Matching at the predictions' resolution, on targets[::s, ::s].
  matched_query = maskformer_matcher.match_queries_to_targets(
      class_logits, mask_logits, gt_classes,
      _slot_masks(gt_masks[:, ::stride, ::stride], gt_classes.shape[1]),
      gt_valid,
      class_weight=class_weight, mask_weight=mask_weight,
      dice_weight=dice_weight,
      pixel_valid=(None if pixel_valid is None
                   else pixel_valid[:, ::stride, ::stride]))
  is_matched = matched_query >= 0

  # Classification: one target class per query.
  assignment = is_matched[:, tf.newaxis, :] & tf.equal(
      matched_query[:, tf.newaxis, :],
      tf.range(num_queries, dtype=tf.int32)[tf.newaxis, :, tf.newaxis])
  query_is_matched = tf.reduce_any(assignment, axis=2)
  query_class = tf.reduce_max(
      tf.where(assignment, gt_classes[:, tf.newaxis, :], -1), axis=2)
  query_class = tf.where(query_is_matched, query_class, no_object_class)
  cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
      labels=query_class, logits=class_logits)
  ce_weight = tf.where(query_is_matched, 1.0, float(no_object_weight))
  loss_ce = tf.reduce_sum(ce_weight * cross_entropy) / tf.reduce_sum(
      ce_weight)

  # Masks at the targets' resolution.
  pixel_weights = maskformer_matcher.valid_pixel_weights(gt_masks,
                                                        pixel_valid)
  focal_sum, dice_sum = _matched_mask_losses(
      mask_logits, gt_masks, pixel_weights, matched_query, static_shapes,
      stride, slot_chunk)
  num_masks = _global_num_masks(gt_valid)
  return {"loss_ce": loss_ce, "loss_mask": focal_sum / num_masks,
          "loss_dice": dice_sum / num_masks}
