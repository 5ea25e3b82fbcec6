"""Geometry and MaskFormer segment targets for one example (pure TF ops).

Geometry: the image is resized keeping its aspect ratio so that its longer
side is `output_size`, then padded bottom/right to [output_size, output_size].
Masks follow the same geometry with nearest-neighbour sampling at pixel
centres: output pixel y reads input pixel floor((y + 0.5) * in / out).

Segments: a segment is one (COCO category, instance id) pair of TFMG's
category/instance masks; category 0 is void. Slots are filled by decreasing
area (after resizing), then increasing contiguous class id, then increasing
instance id; only the first `num_slots` are kept.
"""

import dataclasses
from typing import Dict, Sequence

import tensorflow as tf

VOID_CATEGORY_ID = 0
# Keys of (category, instance) pairs: category * 2**16 + instance (both < 2**16
# because label PNGs are at most 16 bits per value).
_INSTANCE_RADIX = 2**16
_AREA_SHIFT = 2**33


@dataclasses.dataclass(frozen=True)
class CategoryTables:
  """Dense lookup tables indexed by original COCO category id.

  Attributes:
    contiguous_id: contiguous class id in [0, num_classes) or -1 for ids that
      are not a panoptic category (index 0, void, is -1 as well).
    is_thing: 1 for thing categories, 0 otherwise.
  """
  contiguous_id: tf.Tensor
  is_thing: tf.Tensor

  @classmethod
  def from_categories(cls, categories: Sequence[Dict[str, int]]
                      ) -> 'CategoryTables':
    """Builds the tables from COCO panoptic category dicts (`id`, `isthing`)."""
    table_size = max(int(c['id']) for c in categories) + 1
    contiguous = [-1] * table_size
    is_thing = [0] * table_size
    for index, category in enumerate(categories):
      contiguous[int(category['id'])] = index
      is_thing[int(category['id'])] = int(category['isthing'])
    return cls(contiguous_id=tf.constant(contiguous, tf.int64),
               is_thing=tf.constant(is_thing, tf.int64))

  def lookup(self, table: tf.Tensor, category_ids: tf.Tensor) -> tf.Tensor:
    """Gathers `table` at `category_ids`; out-of-range ids read entry 0."""
    size = tf.shape(table, out_type=tf.int64)[0]
    ids = tf.cast(category_ids, tf.int64)
    in_range = (ids >= 0) & (ids < size)
    return tf.gather(table, tf.where(in_range, ids, tf.zeros_like(ids)))

  def is_valid_label(self, category_ids: tf.Tensor) -> tf.Tensor:
    """True where an id is void (0) or a panoptic category."""
    ids = tf.cast(category_ids, tf.int64)
    return tf.equal(ids, VOID_CATEGORY_ID) | (
        self.lookup(self.contiguous_id, ids) >= 0)


def scaled_sizes(size: tf.Tensor, output_size) -> tf.Tensor:
  """(new_height, new_width) int32 [..., 2] with the longer side = `output_size`.

  The shorter side is rounded half up, and at least 1.

  Args:
    size: integer [..., 2], input (height, width) (> 0).
    output_size: the target length of the longer side (int or scalar).

  Returns:
    int32 [..., 2].
  """
  size = tf.cast(size, tf.int64)
  longer = tf.reduce_max(size, axis=-1, keepdims=True)
  scaled = (2 * size * tf.cast(output_size, tf.int64) + longer) // (2 * longer)
  return tf.cast(tf.maximum(scaled, 1), tf.int32)


def scaled_size(height: tf.Tensor, width: tf.Tensor,
                output_size: int) -> tf.Tensor:
  """`scaled_sizes` of one (height, width) pair of int32 scalars: int32 [2]."""
  return scaled_sizes(tf.stack([height, width]), output_size)


def nearest_source_indices(in_size: tf.Tensor, out_size: tf.Tensor
                           ) -> tf.Tensor:
  """Indices floor((i + 0.5) * in_size / out_size), i in [0, out_size)."""
  out_index = tf.range(tf.cast(out_size, tf.int64))
  in_size = tf.cast(in_size, tf.int64)
  out_size = tf.cast(out_size, tf.int64)
  return (2 * out_index + 1) * in_size // (2 * out_size)


def resize_nearest(mask: tf.Tensor, new_size: tf.Tensor) -> tf.Tensor:
  """Nearest-neighbour resize of a [H, W] mask to `new_size` (int32 [2]).

  At the mask's own size the resize is the identity and is skipped.
  """
  shape = tf.shape(mask)

  def resize() -> tf.Tensor:
    rows = nearest_source_indices(shape[0], new_size[0])
    cols = nearest_source_indices(shape[1], new_size[1])
    return tf.gather(tf.gather(mask, rows, axis=0), cols, axis=1)

  same_size = tf.reduce_all(tf.equal(shape[:2], new_size))
  return tf.cond(same_size, lambda: tf.identity(mask), resize)


def pad_to_square(values: tf.Tensor, output_size: int,
                  constant_value: float = 0) -> tf.Tensor:
  """Pads [h, w, ...] at the bottom/right to [output_size, output_size, ...]."""
  shape = tf.shape(values)
  rank = values.shape.rank
  paddings = [[0, output_size - shape[0]], [0, output_size - shape[1]]]
  paddings += [[0, 0]] * (rank - 2)
  padded = tf.pad(values, paddings, constant_values=constant_value)
  padded.set_shape([output_size, output_size] + values.shape[2:].as_list())
  return padded


def resize_image(image: tf.Tensor, new_size: tf.Tensor) -> tf.Tensor:
  """Bilinear (antialiased) resize of uint8 [H, W, 3], rounded to uint8.

  The float result of the resize is rounded to the nearest integer and
  clipped to [0, 255]. When `new_size` is the image's size (COCO images whose
  longer side is already S) the resize is the identity (the antialiasing
  triangle kernel has weight 1 on the pixel itself and 0 on its neighbours),
  so it is skipped.

  Args:
    image: uint8 [H, W, 3].
    new_size: int32 [2].

  Returns:
    uint8 [new_height, new_width, 3].
  """
  def resize() -> tf.Tensor:
    resized = tf.image.resize(tf.cast(image, tf.float32), new_size,
                              method=tf.image.ResizeMethod.BILINEAR,
                              antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)

  same_size = tf.reduce_all(tf.equal(tf.shape(image)[:2], new_size))
  return tf.cond(same_size, lambda: tf.identity(image), resize)


def segment_targets(category_mask: tf.Tensor, instance_mask: tf.Tensor,
                    tables: CategoryTables,
                    num_slots: int) -> Dict[str, tf.Tensor]:
  """Builds slot targets from [H, W] category/instance maps.

  `category_mask` must contain only void (0) and panoptic category ids (the
  caller validates this).

  Args:
    category_mask: integer [H, W], original COCO category ids, 0 = void.
    instance_mask: integer [H, W], instance ids in [0, 2**16).
    tables: the category lookup tables.
    num_slots: N, the number of segment slots.

  Returns:
    A dict with `segment_map` int64 [H, W] (slot index or -1 for void and
    dropped segments), `segment_classes` int64 [N] (contiguous class id or -1),
    `segment_is_thing` int64 [N] (0 for unused slots), `num_segments` and
    `num_dropped_segments` (int64 scalars).
  """
  category = tf.reshape(tf.cast(category_mask, tf.int64), [-1])
  instance = tf.reshape(tf.cast(instance_mask, tf.int64), [-1])
  is_void = tf.equal(category, VOID_CATEGORY_ID)
  keys = tf.where(is_void, tf.constant(-1, tf.int64),
                  category * _INSTANCE_RADIX + instance)
  unique_keys, pixel_to_unique, areas = tf.unique_with_counts(
      keys, out_idx=tf.int64)
  is_segment = unique_keys >= 0
  unique_category = unique_keys // _INSTANCE_RADIX
  unique_instance = unique_keys % _INSTANCE_RADIX
  unique_class = tables.lookup(tables.contiguous_id, unique_category)
  # Descending score = area first, then ascending (class, instance); void last.
  tie_break = (_INSTANCE_RADIX * _INSTANCE_RADIX - 1
               - (unique_class * _INSTANCE_RADIX + unique_instance))
  score = tf.where(is_segment, tf.cast(areas, tf.int64) * _AREA_SHIFT
                   + tie_break, tf.constant(-1, tf.int64))
  order = tf.argsort(score, direction='DESCENDING', stable=True)
  rank = tf.cast(tf.math.invert_permutation(order), tf.int64)

  num_total = tf.reduce_sum(tf.cast(is_segment, tf.int32))
  num_kept = tf.minimum(num_total, num_slots)
  slot_of_unique = tf.where(is_segment & (rank < num_slots), rank,
                            tf.constant(-1, tf.int64))
  segment_map = tf.reshape(tf.gather(slot_of_unique, pixel_to_unique),
                           tf.shape(category_mask))

  kept = order[:num_kept]
  pad = [[0, num_slots - num_kept]]
  segment_classes = tf.pad(tf.gather(unique_class, kept), pad,
                           constant_values=-1)
  segment_is_thing = tf.pad(
      tables.lookup(tables.is_thing, tf.gather(unique_category, kept)), pad)
  segment_classes.set_shape([num_slots])
  segment_is_thing.set_shape([num_slots])
  return {
      'segment_map': segment_map,
      'segment_classes': segment_classes,
      'segment_is_thing': segment_is_thing,
      'num_segments': tf.cast(num_kept, tf.int64),
      'num_dropped_segments': tf.cast(num_total - num_kept, tf.int64),
  }
