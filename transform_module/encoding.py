"""Compact encodings of the transform's S×S outputs (`schemas/transform_output.md`).

A tf.Example can only hold int64, float32 and bytes lists, and TFX writes the
transformed examples as gzipped TFRecords: what is stored costs protobuf and
Arrow encoding in the Transform and, above all, zlib compression. So:

* the image is one byte string (`encode_image`): the source JPEG/PNG bytes
  themselves when the transform's resize is the identity (COCO images at
  S = 640: the output is the decoded source, padded), otherwise the raw uint8
  pixels of the resized, unpadded image as a serialized TensorProto
  (`tf.io.serialize_tensor`). Readers decode it with `decode_image`, which
  decodes a source image with the Transform's own decoder
  (`decode_ops.decode_rgb`), hence to the same pixels, and pads to S×S.
* each S×S label map is S byte strings, one per row: row y holds the
  little-endian raw bytes of the first values of row y in a narrow dtype
  (`ROW_DTYPES`); the values a row does not hold are 0.
  `tf.io.decode_raw(rows, dtype, fixed_length=S * dtype.size)` (or
  `numpy.frombuffer`) reads them back and pads them with 0. The Transform
  stores only the resized image's extent [h, w]: rows y < h hold w values,
  rows y >= h are empty, so the padding (0 in every map) costs nothing to
  encode or gzip. `segment_map` is stored as slot + 1 (0 for void), so that
  its padding is 0 too. One string per row keeps S in the feature's shape
  (`FixedLenFeature([S], tf.string)`).
  (Run-length rows, measured on the real COCO sample, are 16-19x smaller and
  2.5x cheaper to gzip, but expanding them back with `tf.repeat` costs ~10 ms
  per map, in every epoch of the Trainer, against < 1 ms for `decode_raw`.)

`pixel_valid` is not stored: it follows from `original_size` and S
(`pixel_valid`).

One implementation of the encoding and the decoding, used by the Transform,
the Trainer's input pipeline, the exported serving signatures and tests.
"""

from typing import Dict, Mapping, Optional

import numpy as np
import tensorflow as tf

from transform_module import decode_ops
from transform_module import panoptic_targets

IMAGE_KEY = 'image'
# The narrow dtype of each row-encoded label map.
ROW_DTYPES = {
    'segment_map': tf.uint8,    # Slot + 1: slot in [0, N), 0 for void (-1).
    'category_mask': tf.uint8,  # COCO panoptic category id (<= 200), 0 void.
    'instance_mask': tf.uint16,  # TFMG instance id (16-bit PNG at most).
}
# What is added to a map's values before they are stored (0 for the others).
_STORED_OFFSETS = {'segment_map': 1}
# The largest N that the uint8 segment_map holds (slot + 1 <= 255).
MAX_NUM_SEGMENT_SLOTS = 255
# The largest category id that the uint8 category_mask holds.
MAX_CATEGORY_ID = 255


def encode_image(source: tf.Tensor, decoded_size: tf.Tensor,
                 image: tf.Tensor) -> tf.Tensor:
  """Encodes one example's resized, unpadded image as a scalar string.

  Args:
    source: scalar string, the JPEG/PNG bytes that `decode_ops.decode_rgb`
      decoded before the resize.
    decoded_size: int32 [2], (height, width) of the decoded source.
    image: uint8 [h, w, 3], the resized image (before padding).

  Returns:
    `source` when the resize kept the decoded size (the resize is then the
    identity: `image` is the decoded source), else
    `tf.io.serialize_tensor(image)`.
  """
  is_source = tf.reduce_all(tf.equal(decoded_size, tf.shape(image)[:2]))
  return tf.cond(is_source, lambda: tf.identity(source),
                 lambda: tf.io.serialize_tensor(image))


def _decode_one_image(data: tf.Tensor, output_size: int) -> tf.Tensor:
  image = tf.cond(decode_ops.is_jpeg_or_png(data),
                  lambda: decode_ops.decode_rgb(data),
                  lambda: tf.io.parse_tensor(data, tf.uint8))
  image = tf.ensure_shape(image, [None, None, 3])
  size = tf.shape(image)[:2]
  fits = tf.debugging.Assert(
      tf.reduce_all(size <= output_size),
      ['the stored image is larger than the output size S =', output_size,
       '(the transform graph was made for another output_size); image '
       '(height, width):', size])
  with tf.control_dependencies([fits]):
    return panoptic_targets.pad_to_square(image, output_size)


def decode_image(data: tf.Tensor, output_size: int) -> tf.Tensor:
  """Decodes `encode_image` output: string [...] -> uint8 [..., S, S, 3].

  Args:
    data: scalar string or a batch [B] of them.
    output_size: S, the transform's output size (static).

  Returns:
    The image padded bottom/right with 0 to S×S.
  """
  if data.shape.rank == 0:
    return _decode_one_image(data, output_size)
  return tf.map_fn(
      lambda one: _decode_one_image(one, output_size), data,
      fn_output_signature=tf.TensorSpec([output_size, output_size, 3],
                                        tf.uint8))


def encode_rows(key: str, values: tf.Tensor, output_size: int) -> tf.Tensor:
  """Encodes one example's label map, unpadded, as S raw byte strings.

  The caller guarantees that the values fit `ROW_DTYPES[key]` once offset
  (they are cast).

  Args:
    key: the output's name, a key of `ROW_DTYPES`.
    values: [h, w] with h, w <= S: the map on the resized image, without the
      padding (which `decode_rows` restores: 0, -1 for `segment_map`).
    output_size: S (static).

  Returns:
    string [S]: row y < h holds the little-endian bytes of the w stored values
    of `values[y]`; rows y >= h are empty.
  """
  dtype = ROW_DTYPES[key]
  stored = tf.cast(values + _STORED_OFFSETS.get(key, 0), dtype)
  height = tf.shape(values)[0]
  row_bytes = tf.shape(values)[1] * dtype.size
  # A serialized TensorProto of a uint8/uint16 tensor ends with its
  # `tensor_content`, the raw little-endian bytes (tf.io has no op that
  # writes them alone); the rows are cut out of that tail.
  serialized = tf.io.serialize_tensor(stored)
  content_start = tf.strings.length(serialized) - height * row_bytes
  rows = tf.strings.substr(serialized,
                           content_start + tf.range(height) * row_bytes,
                           tf.fill([height], row_bytes))
  rows = tf.concat([rows, tf.fill([output_size - height], '')], axis=0)
  rows.set_shape([output_size])
  return rows


def void_rows(output_size: int) -> tf.Tensor:
  """`encode_rows` of a map that is void everywhere: S empty strings."""
  return tf.fill([output_size], '')


def decode_rows(key: str, rows: tf.Tensor) -> tf.Tensor:
  """Decodes `encode_rows` output: string [..., S] -> int32 [..., S, S].

  The values that a row does not hold (the padding) decode as 0, -1 in
  `segment_map`.
  """
  dtype = ROW_DTYPES[key]
  rows = tf.convert_to_tensor(rows, tf.string)
  output_size = rows.shape[-1]
  row_bytes = output_size * dtype.size
  # decode_raw would silently cut a longer row, e.g. int16 segment_map rows
  # written under another version of the contract.
  fits = tf.debugging.Assert(
      tf.reduce_all(tf.strings.length(rows) <= row_bytes),
      [f'{key!r} has rows longer than S = {output_size} {dtype.name} values: '
       'written by an older Transform output contract (schemas/'
       'transform_output.md); re-run the Transform.'])
  with tf.control_dependencies([fits]):
    values = tf.io.decode_raw(rows, dtype, little_endian=True,
                              fixed_length=row_bytes)
  values = tf.cast(values, tf.int32)
  offset = _STORED_OFFSETS.get(key, 0)
  if offset:
    values -= offset
  values.set_shape(rows.shape.concatenate([output_size]))
  return values


def pixel_valid(original_size: tf.Tensor, output_size) -> tf.Tensor:
  """int32 [..., S, S]: 1 on the resized image, 0 on the padding.

  Args:
    original_size: integer [..., 2], (height, width) of the decoded image.
    output_size: S (int or int32 scalar).
  """
  new_size = panoptic_targets.scaled_sizes(original_size, output_size)
  positions = tf.range(output_size)
  rows = positions < new_size[..., 0:1]
  cols = positions < new_size[..., 1:2]
  return tf.cast(rows[..., :, tf.newaxis] & cols[..., tf.newaxis, :],
                 tf.int32)


def decode_transformed(features: Mapping[str, tf.Tensor],
                       output_size: Optional[int] = None
                       ) -> Dict[str, tf.Tensor]:
  """Decodes parsed transformed features (one example or a batch).

  The image (`decode_image`) and the row-encoded label maps (`decode_rows`)
  are decoded; `pixel_valid` is added when `original_size` is present. Other
  features pass through unchanged.

  Args:
    features: parsed transformed features.
    output_size: S. Needed only when no row-encoded label map is present
      (their number of rows is S); must agree with them otherwise.

  Returns:
    The decoded features: `image` uint8 [..., S, S, 3], the label maps int32
    [..., S, S], `pixel_valid` int32 [..., S, S].

  Raises:
    ValueError: S is unknown, or `output_size` differs from the row count.
  """
  decoded = dict(features)
  for key in ROW_DTYPES:
    if key in features:
      rows = features[key].shape[-1]
      if output_size is not None and rows is not None and rows != output_size:
        raise ValueError(f'{key!r} has {rows} rows, expected output_size = '
                         f'{output_size}.')
      output_size = output_size or rows
      decoded[key] = decode_rows(key, features[key])
  if output_size is None and (IMAGE_KEY in features or
                              'original_size' in features):
    raise ValueError('decode_transformed needs output_size (S) to decode the '
                     'image or derive pixel_valid without a label map.')
  if IMAGE_KEY in features:
    decoded[IMAGE_KEY] = decode_image(features[IMAGE_KEY], output_size)
  if 'original_size' in features:
    decoded['pixel_valid'] = pixel_valid(features['original_size'],
                                         output_size)
  return decoded


def encode_numpy(key: str, values: np.ndarray) -> list:
  """`encode_rows` for numpy (test data): S little-endian row byte strings.

  `values` is the padded [S, S] map; every row is stored whole (also valid:
  `decode_rows` reads rows of up to S values).
  """
  dtype = np.dtype(ROW_DTYPES[key].as_numpy_dtype).newbyteorder('<')
  stored = np.asarray(values) + _STORED_OFFSETS.get(key, 0)
  return [row.astype(dtype).tobytes() for row in stored]


def encode_numpy_image(image: np.ndarray, new_size) -> bytes:
  """`encode_image` of a padded uint8 [S, S, 3] image (test data).

  The padding (outside the top-left `new_size` = (height, width)) must be 0,
  as the decoding restores it as 0.
  """
  image = np.asarray(image, np.uint8)
  height, width = (int(side) for side in new_size)
  if image[height:].any() or image[:, width:].any():
    raise ValueError('the image has non-zero pixels in its padding.')
  return tf.io.serialize_tensor(
      tf.constant(image[:height, :width])).numpy()
