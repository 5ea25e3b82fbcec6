"""Tests for panoptic_targets against plain-Python references."""

import collections
import fractions
import math

import numpy as np
import pytest
import tensorflow as tf

from schemas import load_categories
from transform_module import panoptic_targets

_CATEGORIES = load_categories()
_TABLES = panoptic_targets.CategoryTables.from_categories(_CATEGORIES)
_CONTIGUOUS = {c['id']: i for i, c in enumerate(_CATEGORIES)}
_IS_THING = {c['id']: c['isthing'] for c in _CATEGORIES}
_THING_IDS = [c['id'] for c in _CATEGORIES if c['isthing']]
_STUFF_IDS = [c['id'] for c in _CATEGORIES if not c['isthing']]


def reference_segment_targets(category, instance, num_slots):
  """Segments by (category, instance), sorted by (-area, class, instance)."""
  areas = collections.Counter(
      (int(c), int(i)) for c, i in zip(category.ravel(), instance.ravel())
      if c != 0)
  ordered = sorted(areas, key=lambda k: (-areas[k], _CONTIGUOUS[k[0]], k[1]))
  slot = {key: j for j, key in enumerate(ordered[:num_slots])}
  segment_map = np.full(category.shape, -1, np.int64)
  for (y, x), c in np.ndenumerate(category):
    segment_map[y, x] = slot.get((int(c), int(instance[y, x])), -1)
  classes = np.full([num_slots], -1, np.int64)
  is_thing = np.zeros([num_slots], np.int64)
  for (c, _), j in slot.items():
    classes[j] = _CONTIGUOUS[c]
    is_thing[j] = _IS_THING[c]
  return {
      'segment_map': segment_map,
      'segment_classes': classes,
      'segment_is_thing': is_thing,
      'num_segments': len(slot),
      'num_dropped_segments': len(ordered) - len(slot),
  }


def _assert_targets_equal(actual, expected):
  for key, value in expected.items():
    np.testing.assert_array_equal(actual[key].numpy(), value, err_msg=key)


@pytest.mark.parametrize('height,width,size,expected', [
    (427, 640, 640, (427, 640)),
    (640, 360, 320, (320, 180)),
    (40, 48, 64, (53, 64)),    # 53.33 -> 53
    (30, 20, 64, (64, 43)),    # 42.67 -> 43
    (2, 1000, 64, (1, 64)),    # 0.128 -> at least 1
    (3, 2, 64, (64, 43)),      # 42.67 -> 43
    (10, 4, 5, (5, 2)),        # exactly 2.0
    (4, 10, 9, (4, 9)),        # 3.6 -> 4
])
def test_scaled_size_matches_rounded_ratio(height, width, size, expected):
  longer = max(height, width)
  reference = tuple(
      max(1, math.floor(fractions.Fraction(side * size, longer) +
                        fractions.Fraction(1, 2)))
      for side in (height, width))
  assert reference == expected
  actual = panoptic_targets.scaled_size(tf.constant(height), tf.constant(width),
                                        size)
  assert tuple(actual.numpy()) == expected


@pytest.mark.parametrize('in_size,out_size', [(7, 7), (40, 53), (53, 40),
                                              (10, 64), (427, 640), (5, 2)])
def test_nearest_source_indices_sample_pixel_centres(in_size, out_size):
  expected = [math.floor((fractions.Fraction(i) + fractions.Fraction(1, 2))
                         * in_size / out_size) for i in range(out_size)]
  actual = panoptic_targets.nearest_source_indices(tf.constant(in_size),
                                                   tf.constant(out_size))
  np.testing.assert_array_equal(actual.numpy(), expected)


def test_resize_nearest_matches_index_sampling():
  mask = np.arange(6 * 9, dtype=np.int32).reshape(6, 9)
  actual = panoptic_targets.resize_nearest(tf.constant(mask),
                                           tf.constant([13, 4])).numpy()
  rows = [math.floor((y + 0.5) * 6 / 13) for y in range(13)]
  cols = [math.floor((x + 0.5) * 9 / 4) for x in range(4)]
  np.testing.assert_array_equal(actual, mask[np.ix_(rows, cols)])


def test_pad_to_square_pads_bottom_right():
  values = tf.ones([3, 2, 3])
  padded = panoptic_targets.pad_to_square(values, 5, constant_value=-1)
  expected = np.full([5, 5, 3], -1.0)
  expected[:3, :2] = 1.0
  np.testing.assert_array_equal(padded.numpy(), expected)


def test_category_tables_match_categories_file():
  ids = np.arange(-3, 260)
  contiguous = _TABLES.lookup(_TABLES.contiguous_id, tf.constant(ids)).numpy()
  is_valid = _TABLES.is_valid_label(tf.constant(ids)).numpy()
  for category_id, index, valid in zip(ids, contiguous, is_valid):
    assert index == _CONTIGUOUS.get(int(category_id), -1)
    assert valid == (category_id == 0 or int(category_id) in _CONTIGUOUS)
  assert len(_CONTIGUOUS) == 133 and len(_THING_IDS) == 80


def test_segment_targets_random_maps_match_reference():
  rng = np.random.default_rng(3)
  for _ in range(5):
    labels = rng.choice([0] + _THING_IDS[:4] + _STUFF_IDS[:4], size=[12, 15])
    instance = np.where(np.isin(labels, _THING_IDS),
                        rng.integers(1, 4, size=labels.shape), 0)
    for num_slots in (3, 8, 40):
      actual = panoptic_targets.segment_targets(
          tf.constant(labels, tf.int32), tf.constant(instance, tf.int32),
          _TABLES, num_slots)
      _assert_targets_equal(
          actual, reference_segment_targets(labels, instance, num_slots))


def test_segment_targets_equal_areas_order_by_class_then_instance():
  person, bicycle, sky = 1, 2, 187
  category = np.array([[bicycle, bicycle, person, person],
                       [person, person, sky, sky]])
  instance = np.array([[9, 9, 7, 7],
                       [3, 3, 0, 0]])
  actual = panoptic_targets.segment_targets(
      tf.constant(category), tf.constant(instance), _TABLES, 5)
  # All areas are 2: person/3, person/7, bicycle/9, then sky.
  np.testing.assert_array_equal(actual['segment_map'].numpy(),
                                [[2, 2, 1, 1], [0, 0, 3, 3]])
  np.testing.assert_array_equal(actual['segment_classes'].numpy(),
                                [0, 0, 1, _CONTIGUOUS[sky], -1])
  np.testing.assert_array_equal(actual['segment_is_thing'].numpy(),
                                [1, 1, 1, 0, 0])


def test_segment_targets_all_void_and_void_instances():
  category = np.zeros([4, 4], np.int32)
  instance = np.full([4, 4], 5, np.int32)  # Void with a stray instance id.
  actual = panoptic_targets.segment_targets(
      tf.constant(category), tf.constant(instance), _TABLES, 3)
  _assert_targets_equal(actual,
                        reference_segment_targets(category, instance, 3))
  assert actual['num_segments'].numpy() == 0
  assert np.all(actual['segment_map'].numpy() == -1)


def test_segment_targets_keeps_largest_and_counts_dropped():
  category = np.zeros([10, 10], np.int32)
  instance = np.zeros([10, 10], np.int32)
  # Things 1..6 with areas 10, 9, ..., 5 (rows of decreasing length).
  for k in range(6):
    category[k, :10 - k] = 1
    instance[k, :10 - k] = k + 1
  actual = panoptic_targets.segment_targets(
      tf.constant(category), tf.constant(instance), _TABLES, 4)
  assert actual['num_segments'].numpy() == 4
  assert actual['num_dropped_segments'].numpy() == 2
  segment_map = actual['segment_map'].numpy()
  for k in range(4):
    assert np.all(segment_map[k, :10 - k] == k)
  assert np.all(segment_map[4:] == -1)


@pytest.mark.parametrize('height,width,new_size', [
    (30, 45, (30, 45)),   # Same size: the resize is skipped.
    (30, 45, (20, 30)),   # Downscale (antialiased).
    (30, 45, (43, 64)),   # Upscale.
    (1, 45, (1, 45)),
])
def test_resize_image_equals_rounded_float_resize(height, width, new_size):
  image = np.random.default_rng(height + width).integers(
      0, 256, size=[height, width, 3]).astype(np.uint8)
  reference = tf.clip_by_value(tf.round(tf.image.resize(
      tf.constant(image, tf.float32), new_size, antialias=True)), 0.0, 255.0)
  actual = panoptic_targets.resize_image(tf.constant(image),
                                         tf.constant(new_size))
  assert actual.dtype == tf.uint8
  np.testing.assert_array_equal(actual.numpy().astype(np.float32),
                                reference.numpy())
