"""One overlay style for predict, evaluate-coco and the review report."""

import numpy as np

from schemas import load_categories
from trainer_module.inference import prediction_output
from trainer_module.inference import overlays


def test_segment_colours_separate_segments_and_leave_void_black():
  colours = overlays.category_colours()
  category = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [1, 1, 1, 1],
                       [184, 184, 184, 184]])
  instance = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [2, 2, 1, 1],
                       [0, 0, 0, 0]])
  colour, boundary = overlays.segment_colours(category, instance, colours)
  segments = {}
  for y in range(4):
    for x in range(4):
      segments.setdefault((category[y, x], instance[y, x]), set()).add(
          tuple(colour[y, x]))
  assert all(len(pixel_colours) == 1 for pixel_colours in segments.values())
  assert len({next(iter(c)) for c in segments.values()}) == len(segments)
  assert segments[(0, 0)] == {(0, 0, 0)}
  assert segments[(184, 0)] == {colours[184]}
  # A pixel is on a boundary iff a 4-neighbour is in another segment.
  ids = category * 10 + instance
  padded = np.pad(ids, 1, mode='edge')
  expected = ((padded[1:-1, 1:-1] != padded[:-2, 1:-1]) |
              (padded[1:-1, 1:-1] != padded[2:, 1:-1]) |
              (padded[1:-1, 1:-1] != padded[1:-1, :-2]) |
              (padded[1:-1, 1:-1] != padded[1:-1, 2:]))
  np.testing.assert_array_equal(boundary, expected)


def test_overlay_keeps_void_pixels_and_tints_segments():
  image = np.full((3, 5, 3), 100, np.uint8)
  category = np.zeros((3, 5), np.int64)
  category[:, 2:] = 1
  blended = overlays.overlay(image, category, np.zeros_like(category),
                           {1: (255, 0, 0)})
  # Void (columns 0, 1) keeps the image except on the boundary (column 1);
  # the segment is tinted inside and white on its boundary (column 2).
  np.testing.assert_array_equal(blended[:, 0], np.full((3, 3), 100))
  np.testing.assert_array_equal(blended[:, 1:3], np.full((3, 2, 3), 255))
  alpha = overlays.OVERLAY_ALPHA
  tinted = np.floor(100 * (1 - alpha) + np.array([255, 0, 0]) * alpha)
  np.testing.assert_allclose(blended[:, 3:], np.broadcast_to(tinted, (3, 2, 3)),
                             atol=1)


def test_predict_overlays_are_the_report_overlays_of_its_segments():
  # A thing (id 1, instance shade) and a stuff segment (id 2), void around.
  things = [c for c in load_categories() if c['isthing'] == 1]
  stuff = [c for c in load_categories() if c['isthing'] == 0]
  ids = np.zeros((6, 8), np.int64)
  ids[1:4, 1:4] = 1
  ids[:, 5:] = 2
  infos = [{'id': 1, 'category_id': things[0]['id'], 'isthing': 1},
           {'id': 2, 'category_id': stuff[0]['id'], 'isthing': 0}]
  image = np.random.default_rng(3).integers(0, 256, (6, 8, 3), np.uint8)
  colours = overlays.category_colours()
  side_by_side = prediction_output.overlay_image(image, ids, infos, colours)
  category = np.where(ids == 1, things[0]['id'],
                      np.where(ids == 2, stuff[0]['id'], 0))
  instance = np.where(ids == 1, 1, 0)
  np.testing.assert_array_equal(side_by_side[:, :8], image)
  np.testing.assert_array_equal(
      side_by_side[:, 8:],
      overlays.overlay(image, category, instance, colours))
