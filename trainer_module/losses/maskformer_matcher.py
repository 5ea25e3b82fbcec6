"""MaskFormer's Hungarian matcher: queries to target slots.

Follows the reference PyTorch MaskFormer `HungarianMatcher` (Cheng et al.
2021): the cost of assigning query q to target n is class_weight × (−p_q(c_n))
+ mask_weight × sigmoid focal cost + dice_weight × dice cost, and each image's
valid target slots get the optimal assignment (`hungarian_matching`). Targets
come as fixed-size slots [B, N] with a `gt_valid` flag; padding slots are never
matched. An optional `pixel_valid` mask excludes padded pixels from the costs
(our addition for padded static-size batches; all ones gives the reference's
costs).

The focal constants and the pixel weights are shared with the criterion
(`maskformer_losses`), which uses the matching.
"""

from typing import Optional

import tensorflow as tf

from trainer_module.ops.hungarian_matching import hungarian_matching

FOCAL_ALPHA = 0.25
# The focal exponent γ = 2 of the reference is applied with tf.square (cheaper
# than tf.pow, forward and backward).


def valid_pixel_weights(masks: tf.Tensor,
                        pixel_valid: Optional[tf.Tensor]) -> tf.Tensor:
  """Returns float32 [B, H, W, 1] pixel weights (1 = valid pixel) for
  [B, H, W, C] masks or a [B, H, W] slot map."""
  if pixel_valid is None:
    masks = masks[..., :1] if masks.shape.rank == 4 else masks[..., None]
    return tf.ones_like(masks, dtype=tf.float32)
  return tf.cast(pixel_valid, tf.float32)[..., tf.newaxis]


def num_valid_pixels(pixel_weights: tf.Tensor) -> tf.Tensor:
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
  pixel_weights = valid_pixel_weights(mask_logits, pixel_valid)
  targets = tf.cast(gt_masks, tf.float32) * pixel_weights

  class_prob = tf.nn.softmax(class_logits, axis=-1)
  class_cost = -tf.gather(class_prob, gt_classes, axis=2, batch_dims=1)

  mask_prob = tf.sigmoid(mask_logits)
  # Focal terms for target 1 and target 0 at every pixel; BCE(x, 1) =
  # softplus(-x) and BCE(x, 0) = softplus(x).
  focal_pos = (FOCAL_ALPHA * tf.square(1.0 - mask_prob) *
               tf.nn.softplus(-mask_logits)) * pixel_weights
  focal_neg = ((1.0 - FOCAL_ALPHA) * tf.square(mask_prob) *
               tf.nn.softplus(mask_logits)) * pixel_weights
  # Σ pos·t + Σ neg·(w − t) = Σ (pos − neg)·t + Σ neg·w (neg carries w): one
  # pairwise contraction instead of two.
  focal_cost = (
      tf.einsum("bhwq,bhwn->bqn", focal_pos - focal_neg, targets) +
      tf.reduce_sum(focal_neg, axis=[1, 2])[:, :, tf.newaxis])
  focal_cost /= num_valid_pixels(pixel_weights)[:, None, None]

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
