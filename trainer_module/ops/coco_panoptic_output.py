"""Panoptic inference outputs in the COCO panoptic result form, in TF.

The one implementation of "model output → COCO panoptic result" that the
serving signature and `maskformer-tfx predict` share (predict reads the
signature's outputs):

* segment ids: the segment opened by query q has id q + 1; a thing segment
  owns the pixels with instance q + 1, a stuff segment those of its category
  with instance 0 (stuff queries of one class are merged into the first);
* the S × S map is cropped to the image's valid (top-left) region and
  resized with nearest neighbour to the image's original size, sampling
  pixel centres: output row y reads row ⌊(y + ½)·h / H⌋ (the transform's
  convention; PIL's NEAREST rounds half-way rows down instead);
* segments that vanish in the resize are dropped, the others listed in id
  order first, then -1 padding;
* the id map as a COCO panoptic PNG: id = R + 256·G + 256²·B, 0 = void, the
  colour code of `schemas.coco_panoptic_png`.
"""

from typing import Dict, Mapping

import tensorflow as tf

PNG_OUTPUT = 'panoptic_png_bytes'
SEGMENT_ID = 'segment_id'
SEGMENT_CATEGORY_ID = 'segment_category_id'
SEGMENT_ISTHING = 'segment_isthing'
SEGMENT_SCORE = 'segment_score'
NUM_SEGMENTS = 'num_segments'
# Per-segment outputs: [B, Q], the first `num_segments` entries are the
# image's segments, the rest -1.
SEGMENT_OUTPUTS = (SEGMENT_ID, SEGMENT_CATEGORY_ID, SEGMENT_ISTHING,
                   SEGMENT_SCORE)


def segment_id_map(category_mask: tf.Tensor, instance_mask: tf.Tensor,
                   segment_category: tf.Tensor, segment_is_thing: tf.Tensor,
                   segment_valid: tf.Tensor, num_categories: int
                   ) -> tf.Tensor:
  """Segment ids (int32 [S, S], 0 = void) of one image's panoptic maps.

  Args:
    category_mask, instance_mask: int32 [S, S] (`panoptic_inference`).
    segment_category, segment_is_thing, segment_valid: [Q] per query.
    num_categories: Greater than every category id.
  """
  num_queries = tf.shape(segment_category)[0]
  query_ids = tf.range(1, num_queries + 1, dtype=tf.int32)
  thing_valid = tf.concat(
      [[False], segment_valid & segment_is_thing], axis=0)
  thing_ids = tf.where(
      (instance_mask > 0) & tf.gather(thing_valid, instance_mask),
      instance_mask, 0)
  # The first valid stuff query of each category: the highest rank Q - q.
  stuff = segment_valid & ~segment_is_thing
  rank = tf.where(stuff, num_queries + 1 - query_ids, 0)
  first = tf.maximum(tf.math.unsorted_segment_max(
      rank, tf.where(stuff, segment_category, 0), num_categories), 0)
  stuff_id = tf.where(first > 0, num_queries + 1 - first, 0)
  stuff_ids = tf.where(instance_mask == 0,
                       tf.gather(stuff_id, category_mask), 0)
  return thing_ids + stuff_ids


def to_original_size(values: tf.Tensor, pixel_valid: tf.Tensor,
                     original_size: tf.Tensor) -> tf.Tensor:
  """`values` [S, S] cropped to the valid region and resized (nearest,
  pixel centres) to `original_size` (height, width); no valid pixel: 0."""
  valid = pixel_valid > 0
  height = tf.reduce_sum(tf.cast(tf.reduce_any(valid, axis=1), tf.int32))
  width = tf.reduce_sum(tf.cast(tf.reduce_any(valid, axis=0), tf.int32))

  def sample(size_in, size_out):
    centres = (tf.range(size_out, dtype=tf.float64) + 0.5) * tf.cast(
        size_in, tf.float64) / tf.cast(size_out, tf.float64)
    return tf.clip_by_value(tf.cast(tf.floor(centres), tf.int32), 0,
                            tf.maximum(size_in - 1, 0))

  rows = sample(height, original_size[0])
  cols = sample(width, original_size[1])
  resized = tf.gather(tf.gather(values, rows, axis=0), cols, axis=1)
  return tf.where((height > 0) & (width > 0), resized,
                  tf.zeros_like(resized))


def encode_png(ids: tf.Tensor) -> tf.Tensor:
  """The COCO panoptic PNG (string scalar) of segment ids [H, W]."""
  ids = tf.cast(ids, tf.int64)
  rgb = tf.stack([ids % 256, ids // 256 % 256, ids // 256**2 % 256],
                 axis=-1)
  return tf.io.encode_png(tf.cast(rgb, tf.uint8))


def coco_panoptic_outputs(outputs: Mapping[str, tf.Tensor],
                          num_categories: int) -> Dict[str, tf.Tensor]:
  """The COCO panoptic result of a batch of panoptic inference outputs.

  Args:
    outputs: `category_mask`, `instance_mask`, `pixel_valid` [B, S, S],
      `segment_category`, `segment_score`, `segment_is_thing`,
      `segment_valid` [B, Q] and `original_size` [B, 2].
    num_categories: Greater than every category id.

  Returns:
    `panoptic_png_bytes`: string [B], the id map's PNG at the original size;
    `segment_id`, `segment_category_id`, `segment_isthing` int32 [B, Q] and
    `segment_score` float32 [B, Q]: the segments in the PNG, in id order,
    then -1; `num_segments` int32 [B].
  """

  def one_image(image: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    ids = segment_id_map(image['category_mask'], image['instance_mask'],
                         image['segment_category'],
                         image['segment_is_thing'], image['segment_valid'],
                         num_categories)
    ids = to_original_size(ids, image['pixel_valid'], image['original_size'])
    num_queries = tf.shape(image['segment_valid'])[0]
    present = tf.math.bincount(
        tf.reshape(ids, [-1]), minlength=num_queries + 1,
        maxlength=num_queries + 1, dtype=tf.int32)[1:] > 0
    keep = image['segment_valid'] & present
    order = tf.argsort(tf.cast(~keep, tf.int32), stable=True)
    kept = tf.gather(keep, order)

    def listed(values, dtype):
      return tf.where(kept, tf.cast(tf.gather(values, order), dtype),
                      tf.constant(-1, dtype))

    return {
        PNG_OUTPUT: encode_png(ids),
        SEGMENT_ID: listed(tf.range(1, num_queries + 1), tf.int32),
        SEGMENT_CATEGORY_ID: listed(image['segment_category'], tf.int32),
        SEGMENT_ISTHING: listed(image['segment_is_thing'], tf.int32),
        SEGMENT_SCORE: listed(image['segment_score'], tf.float32),
        NUM_SEGMENTS: tf.reduce_sum(tf.cast(keep, tf.int32)),
    }

  keys = ('category_mask', 'instance_mask', 'pixel_valid', 'original_size',
          'segment_category', 'segment_score', 'segment_is_thing',
          'segment_valid')
  signature = {PNG_OUTPUT: tf.TensorSpec([], tf.string),
               NUM_SEGMENTS: tf.TensorSpec([], tf.int32),
               SEGMENT_SCORE: tf.TensorSpec([None], tf.float32)}
  for key in (SEGMENT_ID, SEGMENT_CATEGORY_ID, SEGMENT_ISTHING):
    signature[key] = tf.TensorSpec([None], tf.int32)
  result = tf.map_fn(one_image, {key: outputs[key] for key in keys},
                     fn_output_signature=signature)
  # Q is static in the inputs: restore it in the outputs' shapes.
  num_queries = outputs['segment_valid'].shape[1]
  for key in SEGMENT_OUTPUTS:
    result[key] = tf.ensure_shape(result[key], [None, num_queries])
  return result
