"""COCO panoptic PNG colours <-> segment ids."""

import numpy as np

from schemas.coco_panoptic_png import decode_segment_ids
from schemas.coco_panoptic_png import encode_segment_ids


def test_colour_is_id_in_base_256_red_first():
  rgb = encode_segment_ids(np.array([[0, 1 + 2 * 256 + 3 * 256**2]]))
  np.testing.assert_array_equal(rgb, [[[0, 0, 0], [1, 2, 3]]])
  assert rgb.dtype == np.uint8


def test_round_trip_over_the_24_bit_range():
  ids = np.random.default_rng(0).integers(0, 2**24, size=(7, 5))
  ids[0, 0] = 2**24 - 1
  np.testing.assert_array_equal(decode_segment_ids(encode_segment_ids(ids)),
                                ids)
