"""Compact encodings of the transform's S×S outputs (`schemas/transform_output.md`).

A tf.Example can only hold int64, float32 and bytes lists. Stored as int64 or
float32 lists, the S×S outputs cost 5–8 bytes per value to serialize and
dominate the Transform's time (protobuf and Arrow encoding) and the records'
size. So each S×S map is stored as S byte strings, one per row: row y holds
the little-endian raw bytes of row y in a narrow dtype (`ROW_DTYPES`), and
`tf.io.decode_raw` (or `numpy.frombuffer`) reads it back. Keeping one string
per row keeps S in the feature's shape (`FixedLenFeature([S], tf.string)`).

`pixel_valid` is not stored: it follows from `original_size` and S
(`pixel_valid`).

One implementation of the encoding and the decoding, used by the Transform,
the Trainer's input pipeline, the exported serving signatures and tests.
"""

from typing import Dict, Mapping

import numpy as np
import tensorflow as tf

from transform_module import panoptic_targets

# The narrow dtype of each row-encoded output.
ROW_DTYPES = {
    'image': tf.uint8,          # RGB, 3 values per pixel.
    'segment_map': tf.int16,    # Slot in [0, N) or -1.
    'category_mask': tf.uint8,  # COCO panoptic category id (<= 200), 0 void.
    'instance_mask': tf.uint16,  # TFMG instance id (16-bit PNG at most).
}
_CHANNELS = {'image': 3}
# The largest N that the int16 segment_map holds.
MAX_NUM_SEGMENT_SLOTS = 2**15 - 1
# The largest category id that the uint8 category_mask holds.
MAX_CATEGORY_ID = 255


def encode_rows(key: str, values: tf.Tensor) -> tf.Tensor:
  """Encodes one example's [S, S(, 3)] output as S raw byte strings.

  The caller guarantees that the values fit `ROW_DTYPES[key]` (they are cast).

  Args:
    key: the output's name, a key of `ROW_DTYPES`.
    values: [S, S] or [S, S, 3] with static S.

  Returns:
    string [S]: row y holds the little-endian bytes of `values[y]`.
  """
  dtype = ROW_DTYPES[key]
  num_rows = values.shape[0]
  num_bytes = values.shape.num_elements() * dtype.size
  row_bytes = num_bytes // num_rows
  # A serialized TensorProto of a uint8/int16/uint16 tensor ends with its
  # `tensor_content`, the raw little-endian bytes (tf.io has no op that
  # writes them alone); the rows are cut out of that tail.
  serialized = tf.io.serialize_tensor(tf.cast(values, dtype))
  content_start = tf.strings.length(serialized) - num_bytes
  rows = tf.strings.substr(serialized,
                           content_start + tf.range(num_rows) * row_bytes,
                           tf.fill([num_rows], row_bytes))
  rows.set_shape([num_rows])
  return rows


def decode_rows(key: str, rows: tf.Tensor) -> tf.Tensor:
  """Decodes `encode_rows` output: string [..., S] -> int32/uint8 [..., S, S(, 3)].

  The image is returned as uint8, the label maps as int32.
  """
  values = tf.io.decode_raw(rows, ROW_DTYPES[key])
  num_rows = rows.shape[-1]
  static_shape = rows.shape.concatenate([num_rows])
  if key in _CHANNELS:
    static_shape = static_shape.concatenate([_CHANNELS[key]])
    values = tf.reshape(values, tf.concat(
        [tf.shape(values)[:-1], [tf.shape(rows)[-1], _CHANNELS[key]]], 0))
  else:
    values = tf.cast(values, tf.int32)
  values.set_shape(static_shape)
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


def decode_transformed(features: Mapping[str, tf.Tensor]
                       ) -> Dict[str, tf.Tensor]:
  """Decodes parsed transformed features (one example or a batch).

  Row-encoded outputs are decoded (`decode_rows`); `pixel_valid` is added
  when `original_size` and one row-encoded output (which gives S) are
  present. Other features pass through unchanged.
  """
  decoded = dict(features)
  output_size = None
  for key in ROW_DTYPES:
    if key in features:
      decoded[key] = decode_rows(key, features[key])
      output_size = (features[key].shape[-1] or
                     tf.shape(features[key])[-1])
  if 'original_size' in features and output_size is not None:
    decoded['pixel_valid'] = pixel_valid(features['original_size'],
                                         output_size)
  return decoded


def encode_numpy(key: str, values: np.ndarray) -> list:
  """`encode_rows` for numpy (test data): S little-endian row byte strings."""
  dtype = np.dtype(ROW_DTYPES[key].as_numpy_dtype).newbyteorder('<')
  return [row.astype(dtype).tobytes() for row in np.asarray(values)]
