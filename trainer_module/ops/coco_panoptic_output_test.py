"""Tests of the COCO panoptic result of panoptic inference outputs."""

import io

import numpy as np
from PIL import Image
import tensorflow as tf

from schemas.coco_panoptic_png import decode_segment_ids
from trainer_module.ops import coco_panoptic_output

NUM_CATEGORIES = 201


def _reference(outputs, height, width):
  """Per-query loop: ids at S, crop, nearest resize (pixel centres), and the
  present segments' (id, category, isthing, score)."""
  category, instance = outputs['category_mask'], outputs['instance_mask']
  ids = np.zeros(category.shape, np.int64)
  for query in np.flatnonzero(outputs['segment_valid']):
    if outputs['segment_is_thing'][query]:
      pixels = instance == query + 1
    else:
      pixels = (category == outputs['segment_category'][query]) & (
          instance == 0)
    ids[pixels] = query + 1
  valid = outputs['pixel_valid'] > 0
  rows, cols = valid.any(axis=1).sum(), valid.any(axis=0).sum()
  y = np.minimum(((np.arange(height) + 0.5) * rows / height).astype(int),
                 rows - 1)
  x = np.minimum(((np.arange(width) + 0.5) * cols / width).astype(int),
                 cols - 1)
  ids = ids[y[:, None], x[None, :]]
  present = set(np.unique(ids).tolist())
  segments = [(query + 1, outputs['segment_category'][query],
               int(outputs['segment_is_thing'][query]),
               outputs['segment_score'][query])
              for query in np.flatnonzero(outputs['segment_valid'])
              if query + 1 in present]
  return ids, segments


def _random_outputs(rng, size, valid_rows, valid_cols, num_queries):
  """Panoptic maps as `panoptic_inference` makes them: each pixel owned by
  one query; merged stuff (a later stuff query of a class already shown)
  keeps its pixels in the first one's segment."""
  owner = rng.integers(0, num_queries, (size, size))
  query_category = rng.integers(1, 6, num_queries) * 10
  is_thing = rng.random(num_queries) < 0.5
  shown = rng.random(num_queries) < 0.8
  valid = np.zeros((size, size), np.int32)
  valid[:valid_rows, :valid_cols] = 1
  pixel_shown = shown[owner] & (valid > 0)
  first_stuff = {}
  for query in range(num_queries):
    if shown[query] and not is_thing[query]:
      first_stuff.setdefault(query_category[query], query)
  segment_valid = shown & (is_thing | np.array(
      [first_stuff.get(query_category[q]) == q for q in range(num_queries)]))
  return {
      'category_mask': np.where(pixel_shown, query_category[owner],
                                0).astype(np.int32),
      'instance_mask': np.where(pixel_shown & is_thing[owner], owner + 1,
                                0).astype(np.int32),
      'pixel_valid': valid,
      'segment_category': np.where(segment_valid, query_category,
                                   0).astype(np.int32),
      'segment_score': rng.random(num_queries).astype(np.float32),
      'segment_is_thing': segment_valid & is_thing,
      'segment_valid': segment_valid,
  }


def test_png_and_segments_match_a_per_query_reference():
  rng = np.random.default_rng(0)
  num_queries, size = 12, 16
  cases = [((16, 10), (27, 13)), ((7, 16), (5, 9)), ((16, 16), (16, 16))]
  images = []
  for (valid_rows, valid_cols), original in cases:
    outputs = _random_outputs(rng, size, valid_rows, valid_cols, num_queries)
    outputs['original_size'] = np.array(original, np.int32)
    images.append(outputs)
  batched = {key: tf.constant(np.stack([image[key] for image in images]))
             for key in images[0]}
  served = {key: value.numpy() for key, value in
            coco_panoptic_output.coco_panoptic_outputs(
                batched, NUM_CATEGORIES).items()}
  assert served['segment_id'].shape == (len(cases), num_queries)
  for index, (outputs, (_, original)) in enumerate(zip(images, cases)):
    ids, segments = _reference(outputs, *original)
    png = Image.open(io.BytesIO(served['panoptic_png_bytes'][index]))
    assert png.mode == 'RGB' and png.size == (original[1], original[0])
    np.testing.assert_array_equal(decode_segment_ids(np.asarray(png)), ids)
    count = served['num_segments'][index]
    assert count == len(segments) > 0
    listed = list(zip(*(served[key][index][:count] for key in (
        'segment_id', 'segment_category_id', 'segment_isthing'))))
    assert listed == [segment[:3] for segment in segments]
    np.testing.assert_allclose(served['segment_score'][index][:count],
                               [segment[3] for segment in segments])
    for key in coco_panoptic_output.SEGMENT_OUTPUTS:
      assert (served[key][index][count:] == -1).all(), key


def test_an_image_without_valid_pixels_is_all_void():
  outputs = {
      'category_mask': tf.ones([1, 4, 4], tf.int32),
      'instance_mask': tf.zeros([1, 4, 4], tf.int32),
      'pixel_valid': tf.zeros([1, 4, 4], tf.int32),
      'original_size': tf.constant([[3, 5]], tf.int32),
      'segment_category': tf.constant([[1, 0]], tf.int32),
      'segment_score': tf.constant([[0.5, 0.0]]),
      'segment_is_thing': tf.constant([[False, False]]),
      'segment_valid': tf.constant([[True, False]]),
  }
  served = coco_panoptic_output.coco_panoptic_outputs(outputs,
                                                      NUM_CATEGORIES)
  png = Image.open(io.BytesIO(served['panoptic_png_bytes'].numpy()[0]))
  assert png.size == (5, 3)
  assert not np.asarray(png).any()
  assert served['num_segments'].numpy().tolist() == [0]
  assert (served['segment_id'].numpy() == -1).all()


def _resize(values, pixel_valid, size):
  return coco_panoptic_output.to_original_size(
      tf.constant(values, tf.int32), tf.constant(pixel_valid, tf.int32),
      tf.constant(size, tf.int32)).numpy()


def test_to_original_size_crops_the_padding_and_resizes():
  rng = np.random.default_rng(0)
  valid_map = rng.integers(0, 5, (4, 6))
  mask = np.zeros((8, 8), np.int32)
  mask[:4, :6] = valid_map
  mask[4:, :] = 99  # Padding below and right of the image.
  mask[:, 6:] = 99
  pixel_valid = np.zeros((8, 8), np.int32)
  pixel_valid[:4, :6] = 1
  np.testing.assert_array_equal(_resize(mask, pixel_valid, (12, 18)),
                                np.repeat(np.repeat(valid_map, 3, 0), 3, 1))


def test_half_way_rows_follow_the_pixel_centre_rule_not_pils_rounding():
  # 2 rows -> 7: output row 3 samples at (3 + 0.5) * 2 / 7 = 1.0 exactly,
  # i.e. input row 1, where PIL's NEAREST takes row 0.
  values = np.array([[10, 10, 10], [20, 20, 20]], np.int32)
  resized = _resize(values, np.ones((2, 3)), (7, 3))
  np.testing.assert_array_equal(resized[:, 0], [10, 10, 10, 20, 20, 20, 20])
  pil = np.asarray(Image.fromarray(values).resize((3, 7), Image.NEAREST))
  assert pil[3, 0] == 10
  # Each output pixel reads input row floor((y + 0.5) * h_in / h_out).
  for in_height, out_height in ((2, 7), (5, 13), (64, 100), (100, 64)):
    column = np.arange(in_height)[:, None]
    expected = [int(np.floor((y + 0.5) * in_height / out_height))
                for y in range(out_height)]
    np.testing.assert_array_equal(
        _resize(column, np.ones(column.shape), (out_height, 1))[:, 0],
        expected)
