"""Tests for the exact per-image panoptic quality evaluator.

References: the goldens `pq_*.npz` (computed with the COCO panoptic API; the
`goldens_dir` fixture of conftest.py) and the COCO panoptic API itself
(`panopticapi.evaluation.pq_compute`) on random label maps written as PNG +
JSON.
"""

import json
from typing import Any, Mapping

import numpy as np
import pytest

from schemas import load_categories as _categories
from trainer_module.evaluation import panoptic_quality
from trainer_module.evaluation.testing import LabelMaps
from trainer_module.evaluation.testing import category_ids as _category_ids
from trainer_module.evaluation.testing import random_panoptic_images
from trainer_module.evaluation.testing import write_coco_panoptic

_TOLERANCE = 1e-9
_GROUPS = ("All", "Things", "Stuff")


def _assert_results_close(got: Mapping[str, Any], expected_summary: Mapping[
    str, Any], expected_per_class: Mapping[int, Any]) -> None:
  for group in _GROUPS:
    assert got[group]["n"] == expected_summary[group]["n"], group
    for quantity in ("pq", "sq", "rq"):
      assert got[group][quantity] == pytest.approx(
          expected_summary[group][quantity], abs=_TOLERANCE), (group, quantity)
  assert set(got["per_class"]) == set(expected_per_class)
  for category_id, expected in expected_per_class.items():
    for quantity in ("pq", "sq", "rq"):
      assert got["per_class"][category_id][quantity] == pytest.approx(
          expected[quantity], abs=_TOLERANCE), (category_id, quantity)


def _num_predictions_mostly_in_void(label_maps: LabelMaps) -> int:
  """Counts predicted segments with more than half of their pixels in void."""
  gt_category, _, pred_category, pred_instance = label_maps
  count = 0
  for image in range(gt_category.shape[0]):
    segment = pred_category[image] * 2**16 + pred_instance[image]
    in_void = gt_category[image] == panoptic_quality.VOID_CATEGORY_ID
    for segment_id in np.unique(segment[pred_category[image] != 0]):
      pixels = segment == segment_id
      count += int(2 * np.sum(pixels & in_void) > np.sum(pixels))
  return count


@pytest.mark.parametrize("name", ["pq_basic", "pq_no_void"])
def test_compute_panoptic_quality_matches_goldens(goldens_dir, name):
  golden = np.load(goldens_dir / f"{name}.npz")
  expected = json.loads(str(golden["expected_json"]))

  got = panoptic_quality.compute_panoptic_quality(
      golden["gt_category"], golden["gt_instance"], golden["pred_category"],
      golden["pred_instance"], _categories())

  _assert_results_close(
      got, expected["summary"],
      {int(k): v for k, v in expected["per_class"].items()})


@pytest.mark.parametrize("seed,num_stuff,num_things,num_void", [
    (0, 3, 6, 2),
    (1, 2, 10, 3),
    (2, 4, 4, 0),
    (3, 2, 8, 4),
])
def test_compute_panoptic_quality_matches_coco_pq_compute(
    tmp_path, seed, num_stuff, num_things, num_void):
  categories = _categories()
  label_maps = random_panoptic_images(seed, num_images=3, height=40, width=56,
                                      num_stuff=num_stuff,
                                      num_things=num_things, num_void=num_void)

  pq_compute = pytest.importorskip("panopticapi.evaluation").pq_compute
  rng = np.random.default_rng(seed)
  gt_json = write_coco_panoptic(tmp_path, "gt", label_maps[0], label_maps[1],
                                categories, rng)
  pred_json = write_coco_panoptic(tmp_path, "pred", label_maps[2],
                                  label_maps[3], categories, rng)

  expected = pq_compute(str(gt_json), str(pred_json))
  got = panoptic_quality.compute_panoptic_quality(*label_maps, categories)

  _assert_results_close(got, expected, expected["per_class"])
  # The cases hold matches, errors and (with void) predictions mostly in void.
  assert 0.0 < got["All"]["rq"] < 1.0
  assert (_num_predictions_mostly_in_void(label_maps) > 0) == (num_void > 0)


def test_void_leaves_union_and_mostly_void_prediction_is_no_fp():
  categories = _categories()
  thing_id = int(_category_ids(categories, 1)[0])
  gt_category = np.zeros((1, 4, 4), np.int32)
  gt_category[0, :, :2] = thing_id
  # Void pixels may carry instance ids; they are still plain void.
  gt_instance = np.where(gt_category > 0, 1, 7).astype(np.int32)
  pred_category = np.full((1, 4, 4), thing_id, np.int32)
  # Predicted segment 2 (rows 1-3, columns 1-3) has 6 of its 9 pixels in void.
  pred_instance = np.ones((1, 4, 4), np.int32)
  pred_instance[0, 1:, 1:] = 2

  got = panoptic_quality.compute_panoptic_quality(gt_category, gt_instance,
                                         pred_category, pred_instance,
                                         categories)

  # Segment 1 (7 pixels) overlaps the GT thing (8 pixels) in 5 pixels and void
  # in 2: IoU = 5 / (7 + 8 - 5 - 2) = 0.625 > 0.5. Segment 2 is no FP.
  assert got["per_class"][thing_id] == {"pq": 0.625, "sq": 0.625, "rq": 1.0}
  assert got["All"]["n"] == 1 and got["Stuff"]["n"] == 0


def test_unknown_category_raises():
  label_map = np.full((1, 2, 2), 12, np.int32)  # 12 is not a COCO panoptic id.
  with pytest.raises(ValueError, match="not in the categories list"):
    panoptic_quality.compute_panoptic_quality(label_map, label_map, label_map,
                                     label_map, _categories())
