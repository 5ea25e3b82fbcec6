"""Small per-example features of the panoptic masks that TFDV can compare.

The raw records hold the segments only inside PNG masks (TFMG's category and
instance masks), where TFDV's statistics cannot see them. Per example this
module decodes both masks with the Transform's checked decoder
(`transform_module.decode_ops`) and derives:

  segment_category       int list: the COCO category id of each segment
  segment_isthing        int list: 1 for a thing segment, 0 for stuff
  segment_area_fraction  float list: each segment's area / the image's area
  num_segments           int: the segments of the example
  image_height, image_width  int: the size of the masks (= of the image)

A segment is one (category, instance) pair of the masks; category 0 is void
(as in `transform_module.panoptic_targets`). An example without label PNGs
(both empty) has only its height and width.
"""

from typing import Dict, List, Optional

import numpy as np

from schemas import load_categories

FEATURES = ('segment_category', 'segment_isthing', 'segment_area_fraction',
            'num_segments', 'image_height', 'image_width')
FLOAT_FEATURES = ('segment_area_fraction',)
CATEGORICAL_FEATURES = ('segment_category', 'segment_isthing', 'num_segments')

_INSTANCE_RADIX = 2**16


class FeatureDeriver:
  """Derives `FEATURES` of serialized raw tf.Examples (build once, call many).

  Decoding and segment counting run in one TF graph; a bad mask fails with
  the decoder's error, which names the example's `source_id`.
  """

  def __init__(self):
    import tensorflow as tf
    from transform_module import decode_ops
    from transform_module import preprocessing as keys

    self._keys = keys
    self._decode_ops = decode_ops
    self._isthing = {int(c['id']): int(c['isthing']) for c in load_categories()}

    def count(category, instance):
      pair = tf.reshape(tf.cast(category, tf.int64) * _INSTANCE_RADIX
                        + tf.cast(instance, tf.int64), [-1])
      unique, _, counts = tf.unique_with_counts(pair)
      return unique, counts, tf.shape(category)[:2]

    @tf.function(input_signature=[tf.TensorSpec([], tf.string)] * 3)
    def checked(category_png, instance_png, source_id):
      # The Transform's decoder: every problem fails naming the source_id.
      category = decode_ops.decode_label_png(
          category_png, source_id, keys.CATEGORY_MASK_KEY)
      instance = decode_ops.decode_label_png(
          instance_png, source_id, keys.INSTANCE_MASK_KEY)
      check = decode_ops.assert_same_size(
          instance, tf.shape(category, out_type=tf.int64), source_id,
          keys.INSTANCE_MASK_KEY)
      with tf.control_dependencies([check]):
        return count(category, instance)

    @tf.function
    def plain(category_png, instance_png, category_dtype, instance_dtype):
      return count(tf.io.decode_png(category_png, 1, category_dtype),
                   tf.io.decode_png(instance_png, 1, instance_dtype))

    self._checked, self._plain = checked, plain

  def _segments(self, category_png: bytes, instance_png: bytes,
                source_id: bytes):
    """(pair keys, pixel counts, [height, width]) of the two masks.

    Masks that are single-channel 8- or 16-bit PNGs of one size (the
    decoder's requirements, read from their headers) are decoded directly;
    anything else, or a decoder error, goes through the checked decoder,
    which fails naming the problem and the source_id. The checked decoder
    costs about 3 ms per example more (its tf.data error capture).
    """
    import tensorflow as tf
    ops = self._decode_ops
    dtypes = []
    for png in (category_png, instance_png):
      if (len(png) < ops._PNG_IHDR_END or not png.startswith(ops._PNG_SIGNATURE)
          or png[ops._PNG_COLOR_TYPE_OFFSET] != ops._PNG_COLOR_TYPE_GRAY
          or png[ops._PNG_BIT_DEPTH_OFFSET] not in (8, 16)):
        return self._checked(category_png, instance_png, source_id)
      dtypes.append(tf.uint16 if png[ops._PNG_BIT_DEPTH_OFFSET] == 16
                    else tf.uint8)
    # PNG IHDR: width then height, 4 bytes each, after the signature, the
    # chunk length and b'IHDR'.
    if category_png[16:24] != instance_png[16:24]:
      return self._checked(category_png, instance_png, source_id)
    try:
      return self._plain(tf.constant(category_png), tf.constant(instance_png),
                         *dtypes)
    except tf.errors.InvalidArgumentError:
      return self._checked(category_png, instance_png, source_id)

  def __call__(self, serialized: bytes) -> Dict[str, Optional[List]]:
    """{feature: list of values, or None when absent} of one raw example."""
    import tensorflow as tf
    keys = self._keys
    features = tf.train.Example.FromString(serialized).features.feature

    def first_bytes(key: str) -> bytes:
      values = features[key].bytes_list.value if key in features else []
      return values[0] if values else b''

    def first_int(key: str) -> Optional[int]:
      values = features[key].int64_list.value if key in features else []
      return int(values[0]) if values else None

    source_id = first_bytes(keys.SOURCE_ID_KEY)
    category_png = first_bytes(keys.CATEGORY_MASK_KEY)
    instance_png = first_bytes(keys.INSTANCE_MASK_KEY)
    if not category_png and not instance_png:  # Unlabelled.
      height, width = first_int(keys.HEIGHT_KEY), first_int(keys.WIDTH_KEY)
      return {**{name: None for name in FEATURES},
              'image_height': None if height is None else [height],
              'image_width': None if width is None else [width]}
    unique, counts, shape = self._segments(category_png, instance_png,
                                           source_id)
    return derive(unique.numpy(), counts.numpy(), shape.numpy(),
                  self._isthing)


def derive(pair_keys: np.ndarray, counts: np.ndarray, shape: np.ndarray,
           isthing: Dict[int, int]) -> Dict[str, List]:
  """`FEATURES` from the (category · 2¹⁶ + instance) keys of an example's
  pixels, their pixel counts and the masks' [height, width]."""
  height, width = int(shape[0]), int(shape[1])
  category = pair_keys.astype(np.int64) // _INSTANCE_RADIX
  # Largest segment first (then by key), so that equal masks give equal lists.
  order = np.lexsort((pair_keys, -counts))
  order = order[category[order] != 0]
  categories = [int(c) for c in category[order]]
  return {
      'segment_category': categories,
      'segment_isthing': [isthing.get(c, 0) for c in categories],
      'segment_area_fraction': [float(n) / (height * width)
                                for n in counts[order]],
      'num_segments': [len(categories)],
      'image_height': [height],
      'image_width': [width],
  }


def to_record_batch(rows: List[Dict[str, Optional[List]]]):
  """A pyarrow RecordBatch (TFDV's input) of derived examples."""
  import pyarrow as pa
  arrays = [pa.array([row[name] for row in rows],
                     type=pa.list_(pa.float32() if name in FLOAT_FEATURES
                                   else pa.int64()))
            for name in FEATURES]
  return pa.RecordBatch.from_arrays(arrays, list(FEATURES))
