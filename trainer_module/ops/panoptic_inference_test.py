"""Tests for the vectorised panoptic inference against a looping reference."""

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.ops.panoptic_inference import panoptic_inference

# Contiguous classes 0..5: 0-2 things, 3-5 stuff; dataset ids are sparse.
THING_CLASS_MASK = np.array([True, True, True, False, False, False])
CATEGORY_IDS = np.array([1, 7, 12, 92, 130, 200], np.int32)
NUM_CLASSES = len(CATEGORY_IDS)


def reference_panoptic_inference(class_logits, mask_logits, object_threshold,
                                 overlap_threshold):
  """Loops over queries like the reference MaskFormer code (one image).

  Args:
    class_logits: [Q, K + 1] logits.
    mask_logits: [H, W, Q] logits (of the valid image region).
    object_threshold: Score threshold.
    overlap_threshold: Overlap threshold.

  Returns:
    panoptic_seg: [H, W] sequential segment ids (0 = void).
    segments: list of dicts with id, query, category_id, isthing, score.
  """
  logits = class_logits.astype(np.float64)
  probs = np.exp(logits - logits.max(-1, keepdims=True))
  probs /= probs.sum(-1, keepdims=True)
  scores, labels = probs.max(-1), probs.argmax(-1)
  masks = 1.0 / (1.0 + np.exp(-mask_logits.astype(np.float64)))
  keep = (labels != NUM_CLASSES) & (scores > object_threshold)
  kept_queries = np.flatnonzero(keep)
  panoptic_seg = np.zeros(masks.shape[:2], np.int32)
  segments = []
  if kept_queries.size == 0:
    return panoptic_seg, segments
  cur_masks = masks[..., kept_queries]
  cur_prob_masks = scores[kept_queries] * cur_masks
  cur_mask_ids = cur_prob_masks.argmax(-1)
  current_segment_id = 0
  stuff_memory = {}
  for k, query in enumerate(kept_queries):
    pred_class = int(labels[query])
    isthing = bool(THING_CLASS_MASK[pred_class])
    mask = cur_mask_ids == k
    mask_area = mask.sum()
    original_area = (cur_masks[..., k] >= 0.5).sum()
    if mask_area > 0 and original_area > 0:
      if mask_area / original_area < overlap_threshold:
        continue
      if not isthing:
        if pred_class in stuff_memory:
          panoptic_seg[mask] = stuff_memory[pred_class]
          continue
        stuff_memory[pred_class] = current_segment_id + 1
      current_segment_id += 1
      panoptic_seg[mask] = current_segment_id
      segments.append(dict(id=current_segment_id, query=int(query),
                           category_id=int(CATEGORY_IDS[pred_class]),
                           isthing=isthing, score=float(scores[query])))
  return panoptic_seg, segments


def expected_outputs(class_logits, mask_logits, pixel_valid, object_threshold,
                     overlap_threshold):
  """Expected op outputs from the reference loop, per image, on valid crops."""
  batch, height, width, num_queries = mask_logits.shape
  category = np.zeros([batch, height, width], np.int32)
  instance = np.zeros([batch, height, width], np.int32)
  seg_category = np.zeros([batch, num_queries], np.int32)
  seg_score = np.zeros([batch, num_queries], np.float32)
  seg_thing = np.zeros([batch, num_queries], bool)
  seg_valid = np.zeros([batch, num_queries], bool)
  for b in range(batch):
    # Valid pixels form a top-left [valid_h, valid_w] crop.
    valid_h = pixel_valid[b].sum(0).max()
    valid_w = pixel_valid[b].sum(1).max()
    panoptic, segments = reference_panoptic_inference(
        class_logits[b], mask_logits[b, :valid_h, :valid_w], object_threshold,
        overlap_threshold)
    for segment in segments:
      pixels = panoptic == segment['id']
      category[b, :valid_h, :valid_w][pixels] = segment['category_id']
      if segment['isthing']:
        instance[b, :valid_h, :valid_w][pixels] = segment['query'] + 1
      query = segment['query']
      seg_category[b, query] = segment['category_id']
      seg_score[b, query] = segment['score']
      seg_thing[b, query] = segment['isthing']
      seg_valid[b, query] = True
  return dict(category_mask=category, instance_mask=instance,
              segment_category=seg_category, segment_score=seg_score,
              segment_is_thing=seg_thing, segment_valid=seg_valid)


def random_inputs(seed, batch=3, num_queries=12, height=20, width=24):
  """Confident class logits and blob-like mask logits (overlapping)."""
  rng = np.random.default_rng(seed)
  class_logits = rng.normal(size=[batch, num_queries, NUM_CLASSES + 1])
  # Some queries are confident about a random label (often "no object").
  confident = rng.random([batch, num_queries]) < 0.7
  labels = rng.integers(0, NUM_CLASSES + 1, size=[batch, num_queries])
  boost = rng.uniform(2.0, 8.0, size=[batch, num_queries])
  np.put_along_axis(
      class_logits, labels[..., None],
      np.take_along_axis(class_logits, labels[..., None], -1)
      + (confident * boost)[..., None], axis=-1)
  yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing='ij')
  centers_y = rng.uniform(0, height, size=[batch, num_queries])
  centers_x = rng.uniform(0, width, size=[batch, num_queries])
  radius = rng.uniform(2.0, 9.0, size=[batch, num_queries])
  distance = np.sqrt(
      (yy[None, :, :, None] - centers_y[:, None, None, :]) ** 2
      + (xx[None, :, :, None] - centers_x[:, None, None, :]) ** 2)
  mask_logits = (radius[:, None, None, :] - distance) + rng.normal(
      scale=1.0, size=distance.shape)
  return class_logits.astype(np.float32), mask_logits.astype(np.float32)


def run_op(class_logits, mask_logits, pixel_valid=None, **kwargs):
  outputs = panoptic_inference(
      tf.constant(class_logits), tf.constant(mask_logits),
      thing_class_mask=tf.constant(THING_CLASS_MASK),
      category_ids=tf.constant(CATEGORY_IDS),
      pixel_valid=None if pixel_valid is None else tf.constant(pixel_valid),
      **kwargs)
  return {key: value.numpy() for key, value in outputs.items()}


def assert_outputs_equal(actual, expected):
  assert set(actual) == set(expected)
  for key, value in expected.items():
    if key == 'segment_score':
      np.testing.assert_allclose(actual[key], value, rtol=1e-5, err_msg=key)
    else:
      np.testing.assert_array_equal(actual[key], value, err_msg=key)


@pytest.mark.parametrize('kept_queries_only', [False, True])
@pytest.mark.parametrize('seed', [0, 1, 2, 3, 4])
def test_matches_reference_loop(seed, kept_queries_only):
  class_logits, mask_logits = random_inputs(seed)
  batch, height, width, _ = mask_logits.shape
  pixel_valid = np.ones([batch, height, width], np.int32)
  expected = expected_outputs(class_logits, mask_logits, pixel_valid, 0.8, 0.8)
  # The random cases exercise kept, dropped and merged queries.
  assert expected['segment_valid'].any()
  actual = run_op(class_logits, mask_logits,
                  kept_queries_only=kept_queries_only)
  assert_outputs_equal(actual, expected)


@pytest.mark.parametrize('kept_queries_only', [False, True])
@pytest.mark.parametrize('seed', [5, 6])
def test_padding_is_void_and_ignored(seed, kept_queries_only):
  class_logits, mask_logits = random_inputs(seed, batch=2)
  batch, height, width, _ = mask_logits.shape
  pixel_valid = np.zeros([batch, height, width], np.int32)
  pixel_valid[0, :14, :17] = 1
  pixel_valid[1, :, :9] = 1
  expected = expected_outputs(class_logits, mask_logits, pixel_valid, 0.8, 0.5)
  actual = run_op(class_logits, mask_logits, pixel_valid,
                  overlap_threshold=0.5, kept_queries_only=kept_queries_only)
  assert_outputs_equal(actual, expected)
  assert not actual['category_mask'][pixel_valid == 0].any()


def make_logits(labels, num_queries, confidence=10.0):
  """Class logits [1, Q, K+1]: query q predicts labels[q] (K = no object)."""
  logits = np.zeros([1, num_queries, NUM_CLASSES + 1], np.float32)
  for query, label in enumerate(labels):
    logits[0, query, label] = confidence
  return logits


@pytest.mark.parametrize('kept_queries_only', [False, True])
def test_no_query_above_threshold_gives_all_void(kept_queries_only):
  class_logits, mask_logits = random_inputs(7, batch=2)
  class_logits = np.zeros_like(class_logits)  # uniform: score = 1/(K+1)
  actual = run_op(class_logits, mask_logits,
                  kept_queries_only=kept_queries_only)
  assert not actual['category_mask'].any()
  assert not actual['instance_mask'].any()
  assert not actual['segment_valid'].any()
  assert not actual['segment_category'].any()


def test_stuff_queries_of_one_class_merge():
  height, width = 4, 6
  mask_logits = np.full([1, height, width, 3], -10.0, np.float32)
  mask_logits[0, :, :3, 0] = 10.0  # stuff class 4, left half
  mask_logits[0, :, 3:, 1] = 10.0  # stuff class 4, right half
  class_logits = make_logits([4, 4, NUM_CLASSES], num_queries=3)
  actual = run_op(class_logits, mask_logits)
  np.testing.assert_array_equal(actual['category_mask'],
                                np.full([1, height, width], CATEGORY_IDS[4]))
  assert not actual['instance_mask'].any()
  np.testing.assert_array_equal(actual['segment_valid'], [[True, False, False]])
  np.testing.assert_array_equal(actual['segment_category'],
                                [[CATEGORY_IDS[4], 0, 0]])


def test_things_of_one_class_stay_separate():
  mask_logits = np.full([1, 2, 4, 2], -10.0, np.float32)
  mask_logits[0, :, :2, 0] = 10.0
  mask_logits[0, :, 2:, 1] = 10.0
  class_logits = make_logits([1, 1], num_queries=2)
  actual = run_op(class_logits, mask_logits)
  np.testing.assert_array_equal(actual['instance_mask'][0],
                                [[1, 1, 2, 2], [1, 1, 2, 2]])
  np.testing.assert_array_equal(actual['segment_is_thing'], [[True, True]])


def test_query_dropped_by_overlap_rule():
  # Query 1 (higher score) covers columns 0-3; query 0 covers columns 2-5
  # but owns only columns 4-5: owned/mask = 2/4 < 0.8, so it is dropped and
  # its pixels become void.
  mask_logits = np.full([1, 1, 6, 2], -10.0, np.float32)
  mask_logits[0, 0, 2:, 0] = 10.0
  mask_logits[0, 0, :4, 1] = 10.0
  class_logits = make_logits([0, 3], num_queries=2)
  class_logits[0, 1, 3] = 12.0
  actual = run_op(class_logits, mask_logits)
  np.testing.assert_array_equal(actual['segment_valid'], [[False, True]])
  np.testing.assert_array_equal(
      actual['category_mask'][0, 0], [CATEGORY_IDS[3]] * 4 + [0, 0])
  assert not actual['instance_mask'].any()
  # With a lower overlap threshold query 0 survives as a thing.
  relaxed = run_op(class_logits, mask_logits, overlap_threshold=0.5)
  np.testing.assert_array_equal(relaxed['instance_mask'][0, 0],
                                [0, 0, 0, 0, 1, 1])


def test_kept_queries_only_with_resize_equals_resize_then_all_queries():
  # Images of one batch keep different numbers of queries (one keeps none);
  # resizing inside (after gathering the kept queries) gives the results of
  # resizing all queries first.
  class_logits, mask_logits = random_inputs(9, batch=3)
  class_logits[2] = 0.0  # uniform scores: nothing kept in image 2
  output_size = (53, 61)
  pixel_valid = np.ones([3, *output_size], np.int32)
  pixel_valid[1, 40:] = 0
  resized = tf.image.resize(mask_logits, output_size, method='bilinear')
  expected = run_op(class_logits, resized.numpy(), pixel_valid)
  assert expected['segment_valid'][:2].any(axis=1).all()
  actual = run_op(class_logits, mask_logits, pixel_valid,
                  output_size=output_size, kept_queries_only=True)
  assert_outputs_equal(actual, expected)


def test_compiles_with_xla():
  class_logits, mask_logits = random_inputs(8, batch=2)
  pixel_valid = np.ones(mask_logits.shape[:3], np.int32)
  pixel_valid[:, -3:] = 0

  @tf.function(jit_compile=True)
  def compiled(class_logits, mask_logits, pixel_valid):
    return panoptic_inference(
        class_logits, mask_logits,
        thing_class_mask=tf.constant(THING_CLASS_MASK),
        category_ids=tf.constant(CATEGORY_IDS), pixel_valid=pixel_valid)

  actual = compiled(tf.constant(class_logits), tf.constant(mask_logits),
                    tf.constant(pixel_valid))
  expected = run_op(class_logits, mask_logits, pixel_valid)
  assert_outputs_equal({k: v.numpy() for k, v in actual.items()}, expected)
