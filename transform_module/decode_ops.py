"""Checked decoding of the encoded image and panoptic PNG masks of one example.

Every check raises `tf.errors.InvalidArgumentError` whose message names the
problem and carries the example's `source_id`, so a bad record can be found
from the Beam error. Decoder failures (truncated or corrupt data behind a valid
signature) are caught with a one-element `tf.data` pipeline and
`ignore_errors`, then reported by an assertion that names the `source_id`: the
decoders' own errors do not, and tf.Transform's Beam error shows only the
batch's schema. All ops are graph ops (no `tf.py_function`): they are
serialised into the Transform SavedModel and also run at serving time.
"""

import functools
from typing import Callable, List, Tuple

import tensorflow as tf

_JPEG_SIGNATURE = b'\xff\xd8\xff'
_PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
# A PNG starts with its 8-byte signature and the IHDR chunk: 4-byte length,
# b'IHDR', width (4), height (4), bit depth (1), colour type (1), ...
_PNG_IHDR_END = 33
_PNG_BIT_DEPTH_OFFSET = 24
_PNG_COLOR_TYPE_OFFSET = 25
_PNG_COLOR_TYPE_GRAY = 0


def _starts_with(data: tf.Tensor, prefix: bytes) -> tf.Tensor:
  return tf.equal(tf.strings.substr(data, 0, len(prefix)), prefix)


def _byte_at(data: tf.Tensor, offset: int) -> tf.Tensor:
  """The unsigned byte at `offset` of a string known to be long enough."""
  return tf.cast(
      tf.io.decode_raw(tf.strings.substr(data, offset, 1), tf.uint8)[0],
      tf.int32)


def _decode_gray_png(data: tf.Tensor, dtype: tf.DType) -> tf.Tensor:
  return tf.cast(tf.io.decode_png(data, channels=1, dtype=dtype), tf.int32)


def _decode_or_flag(decode_fn: Callable[[tf.Tensor], tf.Tensor],
                    encoded: tf.Tensor, empty_result: tf.Tensor
                    ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Runs `decode_fn(encoded)`; on a decoder error returns `empty_result`.

  Args:
    decode_fn: maps the encoded string to a decoded tensor.
    encoded: scalar string.
    empty_result: returned instead when decoding fails; its dtype and rank
      must match the decoded tensor.

  Returns:
    (decoded, ok): the decoded tensor and a scalar bool, False on failure.
  """
  decoded = tf.data.Dataset.from_tensors(encoded).map(
      lambda data: (decode_fn(data), tf.constant(True))).ignore_errors()
  fallback = tf.data.Dataset.from_tensors((empty_result, tf.constant(False)))
  return decoded.concatenate(fallback).take(1).get_single_element()


def _image_format_checks(encoded: tf.Tensor, source_id: tf.Tensor,
                        feature_name: str) -> List[tf.Operation]:
  """Asserts that `encoded` is a non-empty JPEG or PNG."""
  not_empty = tf.debugging.Assert(
      tf.strings.length(encoded) > 0,
      [f'{feature_name} is empty; source_id:', source_id])
  with tf.control_dependencies([not_empty]):
    known_format = tf.debugging.Assert(
        is_jpeg_or_png(encoded),
        [f'{feature_name} is neither a JPEG nor a PNG (bad signature); '
         'source_id:', source_id])
  return [not_empty, known_format]


def is_jpeg_or_png(data: tf.Tensor) -> tf.Tensor:
  """Scalar bool: `data` starts with the JPEG or the PNG signature."""
  return (_starts_with(data, _JPEG_SIGNATURE)
          | _starts_with(data, _PNG_SIGNATURE))


def decode_rgb(data: tf.Tensor) -> tf.Tensor:
  """Decodes JPEG or PNG bytes to uint8 RGB [H, W, 3], unchecked.

  The one decoding of `image/encoded`: `decode_rgb_image` (the Transform) and
  `encoding.decode_image` (readers of the Transform's output) both use it, so
  a stored source image decodes to the same pixels as in the Transform.
  """
  return tf.cond(
      _starts_with(data, _JPEG_SIGNATURE),
      lambda: tf.io.decode_jpeg(
          data, channels=3, dct_method='INTEGER_ACCURATE'),
      lambda: tf.io.decode_png(data, channels=3, dtype=tf.uint8))


def decode_rgb_image(encoded: tf.Tensor, source_id: tf.Tensor) -> tf.Tensor:
  """Decodes a JPEG or PNG to uint8 RGB [H, W, 3].

  Grayscale is replicated to three channels, alpha is dropped, CMYK/YCCK JPEGs
  are converted to RGB by the JPEG decoder, 16-bit PNGs are reduced to 8 bits.
  Empty bytes, other formats and data the decoder rejects (truncated or
  corrupt) fail with an assertion naming `source_id`.

  Args:
    encoded: scalar string, the encoded image.
    source_id: scalar string, used in error messages.

  Returns:
    The decoded image, uint8 [H, W, 3].
  """
  checks = _image_format_checks(encoded, source_id, 'image/encoded')
  with tf.control_dependencies(checks):
    image, decoded_ok = _decode_or_flag(decode_rgb, encoded,
                                        tf.zeros([0, 0, 3], tf.uint8))
    decoded = tf.debugging.Assert(
        decoded_ok,
        ['image/encoded could not be decoded (truncated or corrupt data); '
         'source_id:', source_id])
  with tf.control_dependencies([decoded]):
    image = tf.identity(image)
  image.set_shape([None, None, 3])
  return image


def decode_label_png(encoded: tf.Tensor, source_id: tf.Tensor,
                     feature_name: str) -> tf.Tensor:
  """Decodes a single-channel 8- or 16-bit PNG label mask to int32 [H, W].

  Values are kept exactly: a 16-bit mask is decoded as uint16 (an 8-bit decode
  would keep only the high byte), an 8-bit one as uint8. Palette, RGB(A),
  gray+alpha and sub-byte grayscale PNGs are rejected, because decoding them to
  one channel would change the label values.

  Args:
    encoded: scalar string, the PNG bytes.
    source_id: scalar string, used in error messages.
    feature_name: name of the feature, used in error messages.

  Returns:
    The label values, int32 [H, W].
  """
  not_empty = tf.debugging.Assert(
      tf.strings.length(encoded) > 0,
      [f'{feature_name} is empty; source_id:', source_id])
  with tf.control_dependencies([not_empty]):
    is_png = tf.debugging.Assert(
        _starts_with(encoded, _PNG_SIGNATURE)
        & (tf.strings.length(encoded) >= _PNG_IHDR_END),
        [f'{feature_name} is not a PNG (bad signature or too short); '
         'source_id:', source_id])
  with tf.control_dependencies([is_png]):
    bit_depth = _byte_at(encoded, _PNG_BIT_DEPTH_OFFSET)
    color_type = _byte_at(encoded, _PNG_COLOR_TYPE_OFFSET)
    layout_ok = tf.debugging.Assert(
        tf.equal(color_type, _PNG_COLOR_TYPE_GRAY)
        & (tf.equal(bit_depth, 8) | tf.equal(bit_depth, 16)),
        [f'{feature_name} must be a single-channel 8- or 16-bit grayscale PNG;'
         ' source_id:', source_id, 'PNG colour type:', color_type,
         'bit depth:', bit_depth])
  def decode(data: tf.Tensor) -> tf.Tensor:
    return tf.cond(tf.equal(bit_depth, 16),
                   functools.partial(_decode_gray_png, data, tf.uint16),
                   functools.partial(_decode_gray_png, data, tf.uint8))

  with tf.control_dependencies([layout_ok]):
    mask, decoded_ok = _decode_or_flag(decode, encoded,
                                       tf.zeros([0, 0, 1], tf.int32))
    decoded = tf.debugging.Assert(
        decoded_ok,
        [f'{feature_name} could not be decoded (truncated or corrupt PNG); '
         'source_id:', source_id])
  with tf.control_dependencies([decoded]):
    mask = tf.identity(mask)
  mask.set_shape([None, None, 1])
  return mask[:, :, 0]


def assert_same_size(mask: tf.Tensor, image_size: tf.Tensor,
                     source_id: tf.Tensor, feature_name: str) -> tf.Operation:
  """Asserts that a [H, W] mask has the image's (height, width)."""
  mask_size = tf.shape(mask, out_type=tf.int64)
  return tf.debugging.Assert(
      tf.reduce_all(tf.equal(mask_size, image_size)),
      [f'{feature_name} size differs from the image size; source_id:',
       source_id, 'mask (height, width):', mask_size,
       'image (height, width):', image_size])
