"""Tests of the row encoding of the transform's S×S outputs."""

import fractions
import math

import numpy as np
import pytest
import tensorflow as tf

from transform_module import encoding

_EXTREMES = {
    'image': (0, 255),
    'segment_map': (-1, encoding.MAX_NUM_SEGMENT_SLOTS - 1),
    'category_mask': (0, encoding.MAX_CATEGORY_ID),
    'instance_mask': (0, 2**16 - 1),
}


def _random_values(key, rng, size=7):
  low, high = _EXTREMES[key]
  shape = [size, size, 3] if key == 'image' else [size, size]
  values = rng.integers(low, high + 1, size=shape)
  values.flat[0], values.flat[-1] = low, high
  return values


@pytest.mark.parametrize('key', sorted(encoding.ROW_DTYPES))
def test_rows_round_trip_exactly(key):
  values = _random_values(key, np.random.default_rng(0))
  rows = encoding.encode_rows(key, tf.constant(values))
  assert rows.shape == (7,) and rows.dtype == tf.string
  decoded = encoding.decode_rows(key, rows)
  assert decoded.shape == values.shape
  assert decoded.dtype == (tf.uint8 if key == 'image' else tf.int32)
  np.testing.assert_array_equal(decoded.numpy(), values)
  # The numpy encoder of test data writes the same bytes.
  assert list(rows.numpy()) == encoding.encode_numpy(key, values)


def test_decode_rows_of_a_batch():
  rng = np.random.default_rng(1)
  batch = [_random_values('image', rng) for _ in range(3)]
  rows = tf.stack([encoding.encode_rows('image', tf.constant(v))
                   for v in batch])
  decoded = encoding.decode_rows('image', rows)
  assert decoded.shape == (3, 7, 7, 3)
  np.testing.assert_array_equal(decoded.numpy(), np.stack(batch))


def test_encode_rows_inside_a_graph_function():
  values = _random_values('segment_map', np.random.default_rng(2), size=5)
  encode = tf.function(lambda v: encoding.encode_rows('segment_map', v))
  np.testing.assert_array_equal(
      encoding.decode_rows('segment_map', encode(tf.constant(values))),
      values)


@pytest.mark.parametrize('height,width,size', [
    (427, 640, 640), (640, 360, 320), (40, 48, 64), (2, 1000, 64),
    (3, 2, 64), (64, 64, 64)])
def test_pixel_valid_is_the_resized_image_extent(height, width, size):
  longer = max(height, width)
  new_h, new_w = (max(1, math.floor(fractions.Fraction(side * size, longer)
                                    + fractions.Fraction(1, 2)))
                  for side in (height, width))
  expected = np.zeros([size, size], np.int32)
  expected[:new_h, :new_w] = 1
  actual = encoding.pixel_valid(tf.constant([height, width], tf.int64), size)
  np.testing.assert_array_equal(actual.numpy(), expected)
  batched = encoding.pixel_valid(
      tf.constant([[height, width], [size, size]], tf.int64), size)
  np.testing.assert_array_equal(batched[0].numpy(), expected)
  assert batched[1].numpy().all()


def test_decode_transformed_adds_pixel_valid_and_passes_others():
  image = np.zeros([6, 6, 3], np.uint8)
  features = {
      'image': encoding.encode_rows('image', tf.constant(image))[tf.newaxis],
      'original_size': tf.constant([[3, 6]], tf.int64),
      'segment_classes': tf.constant([[4, -1]], tf.int64),
  }
  decoded = encoding.decode_transformed(features)
  assert decoded['image'].shape == (1, 6, 6, 3)
  np.testing.assert_array_equal(decoded['pixel_valid'][0].numpy().sum(0),
                                [3] * 6)
  assert decoded['segment_classes'] is features['segment_classes']
