"""MaskFormer panoptic inference, vectorised over images and queries.

Implements the reference post-processing (MaskFormer `panoptic_inference`)
with static shapes so that it runs under XLA: instead of numbering segments
sequentially, a panoptic segment is identified by its (category, instance)
pair, where stuff segments have instance 0 (so stuff queries of the same
class merge into one segment) and thing segments have instance q + 1 for the
query q that owns them.

By default every query is processed (static shapes). `kept_queries_only`
processes only the queries that pass the class-score test, as the reference
does: the same results at a fraction of the cost, with a dynamic size, for
TF graphs that are not XLA-compiled (serving, CPU/GPU evaluation).
"""

from typing import Dict, Optional, Sequence

import tensorflow as tf


def _first_argmax(values: tf.Tensor) -> tf.Tensor:
  """Index of the first maximum along the last axis (deterministic ties)."""
  size = values.shape[-1]
  if size is None:
    size = tf.shape(values, out_type=tf.int32)[-1]
  is_max = tf.equal(values, tf.reduce_max(values, axis=-1, keepdims=True))
  indices = tf.where(is_max, tf.range(size, dtype=tf.int32),
                     tf.cast(size, tf.int32))
  return tf.reduce_min(indices, axis=-1)


def _kept_queries_first(kept: tf.Tensor) -> tf.Tensor:
  """Ids [B, K] of each image's kept queries in query order, then others.

  K is the largest number of kept queries of any image of the batch (at
  least 1), a dynamic size.
  """
  order = tf.argsort(tf.cast(tf.logical_not(kept), tf.int32), axis=-1,
                     stable=True)
  num_kept = tf.reduce_max(tf.reduce_sum(tf.cast(kept, tf.int32), axis=-1))
  return order[:, :tf.maximum(num_kept, 1)]


def panoptic_inference(
    class_logits: tf.Tensor,
    mask_logits: tf.Tensor,
    *,
    thing_class_mask: tf.Tensor,
    category_ids: tf.Tensor,
    object_mask_threshold: float = 0.8,
    overlap_threshold: float = 0.8,
    pixel_valid: Optional[tf.Tensor] = None,
    output_size: Optional[Sequence[int]] = None,
    kept_queries_only: bool = False,
) -> Dict[str, tf.Tensor]:
  """Merges per-query predictions into panoptic segmentations.

  Reference algorithm: scores, labels = max/argmax of softmax(class logits);
  queries whose label is not "no object" and whose score exceeds
  `object_mask_threshold` are kept; each pixel goes to the kept query with the
  largest score · sigmoid(mask logit) (ties: first query); a kept query is
  dropped when it owns no pixel, has no pixel with sigmoid ≥ 0.5, or owns
  less than `overlap_threshold` of those pixels. Pixels of dropped queries,
  of images without kept queries and padding pixels are void.

  Args:
    class_logits: [B, Q, K + 1] class logits; index K is "no object".
    mask_logits: [B, H, W, Q] mask logits at the output resolution, or at any
      resolution when `output_size` is given.
    thing_class_mask: [K] bool, True where the contiguous class is a thing.
    category_ids: [K] int, the dataset (e.g. COCO) id of each contiguous
      class; ids must be > 0 since 0 marks void.
    object_mask_threshold: Minimum class score (exclusive) to keep a query.
    overlap_threshold: Minimum owned / (sigmoid ≥ 0.5) area to keep a query.
    pixel_valid: Optional [B, H, W] mask, non-zero for image pixels and zero
      for padding; padding is void and excluded from all areas (as if the
      image were cropped). At the output resolution.
    output_size: Optional (H, W): the mask logits are first resized to it
      bilinearly (as the reference upsamples them to the input size).
    kept_queries_only: Resize and process only the kept queries, as the
      reference does (gathered in query order along an axis of dynamic size:
      the largest number kept in an image of the batch). Same results, much
      cheaper at full resolution (a trained model keeps ~10–20 of 100
      queries), but not XLA-compilable: leave False under XLA (TPU).

  Returns:
    A dict with
      category_mask: int32 [B, H, W] dataset category id per pixel, 0 = void.
      instance_mask: int32 [B, H, W] q + 1 on pixels of the thing segment of
        query q; 0 on void and stuff.
      segment_category: int32 [B, Q] category id of the segment opened by
        query q (0 if q opens none; a merged stuff segment is opened by its
        first query).
      segment_score: float32 [B, Q] class score of the opening query, else 0.
      segment_is_thing: bool [B, Q] whether q opens a thing segment.
      segment_valid: bool [B, Q] whether q opens a segment.
  """
  class_logits = tf.cast(class_logits, tf.float32)
  mask_logits = tf.cast(mask_logits, tf.float32)
  num_classes = class_logits.shape[-1] - 1
  num_queries = class_logits.shape[-2]
  category_ids = tf.cast(category_ids, tf.int32)
  thing_class_mask = tf.cast(thing_class_mask, tf.bool)

  probs = tf.nn.softmax(class_logits, axis=-1)
  scores = tf.reduce_max(probs, axis=-1)  # [B, Q]
  labels = _first_argmax(probs)  # [B, Q]
  kept = tf.logical_and(tf.not_equal(labels, num_classes),
                        scores > object_mask_threshold)
  # No-object labels only occur on queries that are not kept; clamp them so
  # that the per-class lookups stay in range.
  class_of_query = tf.minimum(labels, num_classes - 1)
  category_of_query = tf.gather(category_ids, class_of_query)
  thing_of_query = tf.gather(thing_class_mask, class_of_query)

  # Candidates: the queries a pixel may go to (all, or the kept ones first).
  if kept_queries_only:
    candidate_query = _kept_queries_first(kept)  # [B, C]
    mask_logits = tf.gather(mask_logits, candidate_query, axis=3,
                            batch_dims=1)
    candidate_kept = tf.gather(kept, candidate_query, batch_dims=1)
    candidate_score = tf.gather(scores, candidate_query, batch_dims=1)
    num_candidates = tf.shape(candidate_query)[1]
  else:
    candidate_kept, candidate_score = kept, scores
    num_candidates = num_queries
  if output_size is not None:
    mask_logits = tf.image.resize(mask_logits, output_size,
                                  method=tf.image.ResizeMethod.BILINEAR)

  masks = tf.sigmoid(mask_logits)  # [B, H, W, C]
  weighted = tf.where(candidate_kept[:, None, None, :],
                      candidate_score[:, None, None, :] * masks, -1.0)
  owner = _first_argmax(weighted)  # [B, H, W] candidate index

  if pixel_valid is None:
    valid = tf.ones_like(owner, dtype=tf.float32)
  else:
    valid = tf.cast(tf.not_equal(pixel_valid, 0), tf.float32)
  batch_size = tf.shape(owner)[0]
  # Owned pixels per (image, candidate): a segment sum over b * C + owner.
  owned_area = tf.reshape(
      tf.math.unsorted_segment_sum(
          tf.reshape(valid, [-1]),
          tf.reshape(
              owner + num_candidates * tf.range(batch_size)[:, None, None],
              [-1]),
          batch_size * num_candidates),
      [batch_size, num_candidates])
  mask_area = tf.reduce_sum(
      tf.cast(masks >= 0.5, tf.float32) * valid[..., None], axis=[1, 2])
  overlap = owned_area / tf.maximum(mask_area, 1.0)
  candidate_shown = candidate_kept & (owned_area > 0) & (mask_area > 0) & (
      overlap >= overlap_threshold)  # [B, C]: the query's pixels are shown
  if kept_queries_only:
    # Back to query ids: the owning query of each pixel, the shown queries.
    owner = tf.gather(candidate_query, owner, batch_dims=1)
    shown = tf.reduce_any(
        tf.equal(candidate_query[:, :, None],
                 tf.range(num_queries, dtype=tf.int32)[None, None, :])
        & candidate_shown[:, :, None], axis=1)  # [B, Q]
  else:
    shown = candidate_shown

  pixel_shown = tf.logical_and(tf.gather(shown, owner, batch_dims=1),
                               valid > 0)
  pixel_thing = tf.gather(thing_of_query, owner, batch_dims=1)
  category_mask = tf.where(
      pixel_shown, tf.gather(category_of_query, owner, batch_dims=1), 0)
  instance_mask = tf.where(pixel_shown & pixel_thing, owner + 1, 0)

  # A shown stuff query opens a segment unless an earlier shown stuff query
  # has the same class (the reference merges them into that segment).
  shown_stuff = shown & ~thing_of_query
  earlier = tf.range(num_queries)[None, :] < tf.range(num_queries)[:, None]
  same_class = tf.equal(class_of_query[:, :, None], class_of_query[:, None, :])
  merged = tf.reduce_any(
      same_class & shown_stuff[:, None, :] & earlier[None], axis=-1)
  segment_valid = shown & (thing_of_query | ~merged)
  return {
      'category_mask': category_mask,
      'instance_mask': instance_mask,
      'segment_category': tf.where(segment_valid, category_of_query, 0),
      'segment_score': tf.where(segment_valid, scores, 0.0),
      'segment_is_thing': segment_valid & thing_of_query,
      'segment_valid': segment_valid,
  }
