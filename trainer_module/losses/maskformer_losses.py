"""MaskFormer set criterion: Hungarian matching, CE, focal and dice losses.

Follows the reference PyTorch MaskFormer `HungarianMatcher` + `SetCriterion`
(Cheng et al. 2021) for one decoder output, with static shapes for XLA:

* Targets come as fixed-size slots [B, N] with a `gt_valid` flag; padding
  slots are never matched and never counted.
* Predictions and targets have the same resolution (the caller resizes).
* An optional `pixel_valid` mask excludes padded pixels from the matching
  costs, the focal loss (mean over valid pixels only) and the dice loss. The
  reference has no such mask: it is our addition for padded static-size
  batches, and with an all-ones mask the results are the reference ones.

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

from typing import Mapping, Optional

import tensorflow as tf

from trainer_module.ops.hungarian_matching import hungarian_matching

_FOCAL_ALPHA = 0.25
# The focal exponent γ = 2 of the reference is applied with tf.square (cheaper
# than tf.pow, forward and backward).


def _pixel_weights(mask_logits: tf.Tensor,
                   pixel_valid: Optional[tf.Tensor]) -> tf.Tensor:
  """Returns float32 [B, H, W, 1] pixel weights (1 = valid pixel)."""
  if pixel_valid is None:
    return tf.ones_like(mask_logits[..., :1])
  return tf.cast(pixel_valid, tf.float32)[..., tf.newaxis]


def _num_valid_pixels(pixel_weights: tf.Tensor) -> tf.Tensor:
  """Returns float32 [B]: valid pixels per image, at least 1."""
  return tf.maximum(tf.reduce_sum(pixel_weights, axis=[1, 2, 3]), 1.0)


def maskformer_matching_cost(class_logits: tf.Tensor,
                             mask_logits: tf.Tensor,
                             gt_classes: tf.Tensor,
                             gt_masks: tf.Tensor,
                             *,
                             class_weight: float = 1.0,
                             mask_weight: float = 20.0,
                             dice_weight: float = 1.0,
                             pixel_valid: Optional[tf.Tensor] = None
                            ) -> tf.Tensor:
  """Computes the reference matching cost between queries and target slots.

  cost[b, q, n] = class_weight * (-softmax(class_logits)[b, q, gt_classes])
    + mask_weight * pairwise sigmoid focal cost (alpha 0.25, gamma 2, mean over
    valid pixels) + dice_weight * pairwise dice cost (+1 smoothing).

  Args:
    class_logits: [B, Q, K+1] class logits, index K = no object.
    mask_logits: [B, H, W, Q] mask logits.
    gt_classes: int [B, N] target class ids in [0, K) (padding slots: any).
    gt_masks: [B, H, W, N] binary target masks.
    class_weight: weight of the class cost.
    mask_weight: weight of the focal cost.
    dice_weight: weight of the dice cost.
    pixel_valid: optional [B, H, W] 0/1 mask of real (non-padded) pixels.

  Returns:
    float32 [B, Q, N] costs, with no gradient. Padding slots get finite
    values that callers must override or ignore.
  """
  class_logits = tf.stop_gradient(tf.cast(class_logits, tf.float32))
  mask_logits = tf.stop_gradient(tf.cast(mask_logits, tf.float32))
  num_classes_with_void = class_logits.shape[-1]
  gt_classes = tf.clip_by_value(
      tf.cast(gt_classes, tf.int32), 0, num_classes_with_void - 1)
  pixel_weights = _pixel_weights(mask_logits, pixel_valid)
  targets = tf.cast(gt_masks, tf.float32) * pixel_weights

  class_prob = tf.nn.softmax(class_logits, axis=-1)
  class_cost = -tf.gather(class_prob, gt_classes, axis=2, batch_dims=1)

  mask_prob = tf.sigmoid(mask_logits)
  # Focal terms for target 1 and target 0 at every pixel; BCE(x, 1) =
  # softplus(-x) and BCE(x, 0) = softplus(x).
  focal_pos = (_FOCAL_ALPHA * tf.square(1.0 - mask_prob) *
               tf.nn.softplus(-mask_logits)) * pixel_weights
  focal_neg = ((1.0 - _FOCAL_ALPHA) * tf.square(mask_prob) *
               tf.nn.softplus(mask_logits)) * pixel_weights
  # Σ pos·t + Σ neg·(w − t) = Σ (pos − neg)·t + Σ neg·w (neg carries w): one
  # pairwise contraction instead of two.
  focal_cost = (
      tf.einsum("bhwq,bhwn->bqn", focal_pos - focal_neg, targets) +
      tf.reduce_sum(focal_neg, axis=[1, 2])[:, :, tf.newaxis])
  focal_cost /= _num_valid_pixels(pixel_weights)[:, None, None]

  mask_prob *= pixel_weights
  intersection = tf.einsum("bhwq,bhwn->bqn", mask_prob, targets)
  pred_area = tf.reduce_sum(mask_prob, axis=[1, 2])[:, :, None]
  target_area = tf.reduce_sum(targets, axis=[1, 2])[:, None, :]
  dice_cost = 1.0 - (2.0 * intersection + 1.0) / (
      pred_area + target_area + 1.0)

  return (class_weight * class_cost + mask_weight * focal_cost +
          dice_weight * dice_cost)


def match_queries_to_targets(class_logits: tf.Tensor,
                             mask_logits: tf.Tensor,
                             gt_classes: tf.Tensor,
                             gt_masks: tf.Tensor,
                             gt_valid: tf.Tensor,
                             *,
                             class_weight: float = 1.0,
                             mask_weight: float = 20.0,
                             dice_weight: float = 1.0,
                             pixel_valid: Optional[tf.Tensor] = None
                            ) -> tf.Tensor:
  """Hungarian-matches each image's valid target slots to queries.

  Padding slots get a constant cost column larger than every valid cost of
  the image, which leaves the optimum over the valid slots unchanged (also
  when there are more slots than queries), and are then marked unmatched.

  Args:
    class_logits: [B, Q, K+1] class logits, index K = no object.
    mask_logits: [B, H, W, Q] mask logits.
    gt_classes: int [B, N] target class ids in [0, K).
    gt_masks: [B, H, W, N] binary target masks.
    gt_valid: bool [B, N]; False marks padding slots.
    class_weight: weight of the class cost.
    mask_weight: weight of the focal cost.
    dice_weight: weight of the dice cost.
    pixel_valid: optional [B, H, W] 0/1 mask of real (non-padded) pixels.

  Returns:
    int32 [B, N]: the query matched to each target slot; -1 for padding slots
    (and for valid targets left over when an image has more than Q of them).
    Not differentiable.
  """
  cost = maskformer_matching_cost(
      class_logits, mask_logits, gt_classes, gt_masks,
      class_weight=class_weight, mask_weight=mask_weight,
      dice_weight=dice_weight, pixel_valid=pixel_valid)
  gt_valid = tf.cast(gt_valid, tf.bool)
  valid_pairs = tf.broadcast_to(gt_valid[:, tf.newaxis, :], tf.shape(cost))
  max_valid_cost = tf.reduce_max(
      tf.where(valid_pairs, cost, -float("inf")), axis=[1, 2], keepdims=True)
  # Strictly above every valid cost, also where float32 would absorb a +1.
  padding_cost = tf.where(
      tf.math.is_finite(max_valid_cost),
      max_valid_cost + tf.maximum(tf.abs(max_valid_cost), 1.0), 0.0)
  cost = tf.where(valid_pairs, cost, padding_cost)
  assignment = hungarian_matching(cost) & valid_pairs
  num_queries = cost.shape[1]
  query_ids = tf.range(num_queries, dtype=tf.int32)[tf.newaxis, :, tf.newaxis]
  return tf.where(
      tf.reduce_any(assignment, axis=1),
      tf.reduce_max(tf.where(assignment, query_ids, -1), axis=1), -1)


def _global_num_masks(gt_valid: tf.Tensor) -> tf.Tensor:
  """Number of valid targets averaged over replicas, at least 1 (float32)."""
  num_masks = tf.reduce_sum(tf.cast(gt_valid, tf.float32))
  replica_context = tf.distribute.get_replica_context()
  if replica_context is not None:
    num_masks = replica_context.all_reduce(
        tf.distribute.ReduceOp.SUM, num_masks)
    num_masks /= float(replica_context.num_replicas_in_sync)
  return tf.maximum(num_masks, 1.0)


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
                      pixel_valid: Optional[tf.Tensor] = None
                     ) -> Mapping[str, tf.Tensor]:
  """Computes the MaskFormer losses of one decoder output.

  The class/mask/dice weights are used for the matching cost only; the
  returned losses are unweighted.

  Args:
    class_logits: [B, Q, K+1] class logits, index K = no object.
    mask_logits: [B, H, W, Q] mask logits at the targets' resolution.
    gt_classes: int [B, N] target class ids in [0, K).
    gt_masks: [B, H, W, N] binary target masks.
    gt_valid: bool [B, N]; False marks padding slots.
    no_object_weight: CE weight of queries labelled "no object".
    class_weight: matching weight of the class cost.
    mask_weight: matching weight of the focal cost.
    dice_weight: matching weight of the dice cost.
    pixel_valid: optional [B, H, W] 0/1 mask of real (non-padded) pixels.

  Returns:
    Dict of float32 scalars:
      loss_ce: Σ w·CE / Σ w over all queries of the batch; unmatched queries
        target class K with weight `no_object_weight`, matched ones their
        target's class with weight 1.
      loss_mask: sigmoid focal loss (alpha 0.25, gamma 2), mean over valid
        pixels, summed over matched pairs, divided by num_masks.
      loss_dice: 1 - (2Σst + 1) / (Σs + Σt + 1) summed over matched pairs,
        divided by num_masks.
    num_masks is the global number of valid targets divided by the number of
    replicas (at least 1); see the module docstring for how the per-replica
    losses must be combined.
  """
  class_logits = tf.cast(class_logits, tf.float32)
  mask_logits = tf.cast(mask_logits, tf.float32)
  gt_classes = tf.cast(gt_classes, tf.int32)
  gt_valid = tf.cast(gt_valid, tf.bool)
  num_queries = class_logits.shape[1]
  no_object_class = class_logits.shape[2] - 1

  matched_query = match_queries_to_targets(
      class_logits, mask_logits, gt_classes, gt_masks, gt_valid,
      class_weight=class_weight, mask_weight=mask_weight,
      dice_weight=dice_weight, pixel_valid=pixel_valid)
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

  # Masks: the matched query's logits for every target slot.
  pixel_weights = _pixel_weights(mask_logits, pixel_valid)
  matched_logits = tf.gather(
      mask_logits, tf.maximum(matched_query, 0), axis=3, batch_dims=1)
  targets = tf.cast(gt_masks, tf.float32) * pixel_weights
  pair_weight = tf.cast(is_matched, tf.float32)
  num_masks = _global_num_masks(gt_valid)

  mask_prob = tf.sigmoid(matched_logits)
  bce = tf.nn.sigmoid_cross_entropy_with_logits(
      labels=targets, logits=matched_logits)
  prob_of_target = mask_prob * targets + (1.0 - mask_prob) * (1.0 - targets)
  alpha_t = _FOCAL_ALPHA * targets + (1.0 - _FOCAL_ALPHA) * (1.0 - targets)
  focal = alpha_t * tf.square(1.0 - prob_of_target) * bce
  focal_per_pair = tf.reduce_sum(
      focal * pixel_weights, axis=[1, 2]) / _num_valid_pixels(
          pixel_weights)[:, None]
  loss_mask = tf.reduce_sum(focal_per_pair * pair_weight) / num_masks

  mask_prob *= pixel_weights
  intersection = tf.reduce_sum(mask_prob * targets, axis=[1, 2])
  dice = 1.0 - (2.0 * intersection + 1.0) / (
      tf.reduce_sum(mask_prob, axis=[1, 2]) +
      tf.reduce_sum(targets, axis=[1, 2]) + 1.0)
  loss_dice = tf.reduce_sum(dice * pair_weight) / num_masks

  return {"loss_ce": loss_ce, "loss_mask": loss_mask, "loss_dice": loss_dice}
