"""Tests for the panoptic quality evaluator and its TFMA metric.

References: the goldens in `<repo>/../shared/goldens` (computed with the COCO
panoptic API) and the COCO panoptic API itself (`panopticapi.evaluation.
pq_compute`) on random label maps written as PNG + JSON.
"""

import json
from pathlib import Path
import pickle
from typing import Any, Dict, List, Mapping, Sequence

import apache_beam as beam
from apache_beam.testing import util as beam_testing_util
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from schemas import load_categories as _categories
from tfx_pipeline import metrics
from tfx_pipeline.synthetic_panoptic import LabelMaps
from tfx_pipeline.synthetic_panoptic import category_ids as _category_ids
from tfx_pipeline.synthetic_panoptic import extracts_from_label_maps
from tfx_pipeline.synthetic_panoptic import random_panoptic_images
from tfx_pipeline.synthetic_panoptic import write_coco_panoptic

_SHARED_DIR = Path(__file__).resolve().parents[1] / ".." / "shared"
_GOLDENS_DIR = _SHARED_DIR / "goldens"
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
    in_void = gt_category[image] == metrics.VOID_CATEGORY_ID
    for segment_id in np.unique(segment[pred_category[image] != 0]):
      pixels = segment == segment_id
      count += int(2 * np.sum(pixels & in_void) > np.sum(pixels))
  return count


def _golden_paths() -> List[Path]:
  return sorted(_GOLDENS_DIR.glob("pq_*.npz"))


@pytest.mark.parametrize("golden_path", _golden_paths() or [None],
                         ids=lambda path: path.stem if path else "missing")
def test_compute_panoptic_quality_matches_goldens(golden_path):
  if golden_path is None:
    pytest.skip(f"{_GOLDENS_DIR} not found or holds no pq_*.npz goldens")
  golden = np.load(golden_path)
  categories = json.loads((_SHARED_DIR / "data" / "coco_panoptic_sample" /
                           "panoptic_coco_categories.json").read_text())
  expected = json.loads(str(golden["expected_json"]))

  got = metrics.compute_panoptic_quality(golden["gt_category"],
                                         golden["gt_instance"],
                                         golden["pred_category"],
                                         golden["pred_instance"], categories)

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
  got = metrics.compute_panoptic_quality(*label_maps, categories)

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

  got = metrics.compute_panoptic_quality(gt_category, gt_instance,
                                         pred_category, pred_instance,
                                         categories)

  # Segment 1 (7 pixels) overlaps the GT thing (8 pixels) in 5 pixels and void
  # in 2: IoU = 5 / (7 + 8 - 5 - 2) = 0.625 > 0.5. Segment 2 is no FP.
  assert got["per_class"][thing_id] == {"pq": 0.625, "sq": 0.625, "rq": 1.0}
  assert got["All"]["n"] == 1 and got["Stuff"]["n"] == 0


def test_unknown_category_raises():
  label_map = np.full((1, 2, 2), 12, np.int32)  # 12 is not a COCO panoptic id.
  with pytest.raises(ValueError, match="not in the categories list"):
    metrics.compute_panoptic_quality(label_map, label_map, label_map,
                                     label_map, _categories())


def _expected_metric_values(label_maps: LabelMaps) -> Dict[str, float]:
  return metrics.metric_values(
      metrics.compute_panoptic_quality(*label_maps, _categories()))


def _assert_metric_values_close(got: Mapping[metric_types.MetricKey, float],
                                expected: Mapping[str, float]) -> None:
  assert {key.name for key in got} == set(expected)
  for key, value in got.items():
    assert value == pytest.approx(expected[key.name], abs=_TOLERANCE), key.name


def _batched_features(examples: Sequence[Mapping[str, Any]]
                     ) -> Dict[str, Any]:
  """Stacks examples into one batched extract of raw features."""

  def stack(kind: str, key: str) -> np.ndarray:
    return np.stack([example[kind][key] for example in examples])

  return {"features": {
      name: {"semantic": stack(kind, "category_mask"),
             "instance": stack(kind, "instance_mask")}
      for name, kind in (("panoptic_labels", "labels"),
                         ("panoptic_predictions", "predictions"))
  }}


def test_tfma_metric_matches_compute_panoptic_quality_in_beam():
  label_maps = random_panoptic_images(10, num_images=5, height=24, width=32,
                                      num_stuff=3, num_things=6, num_void=2)
  expected = _expected_metric_values(label_maps)
  assert expected["pq"] > 0.0
  # The MetricConfig the pipeline uses; the masks are read under custom keys.
  metric_config = tfma.MetricConfig(
      class_name="PanopticQuality",
      module="tfx_pipeline.metrics",
      config=json.dumps({"category_mask_key": "semantic",
                         "instance_mask_key": "instance"}))
  eval_config = tfma.EvalConfig(
      model_specs=[tfma.ModelSpec(label_key="panoptic_labels",
                                  prediction_key="panoptic_predictions")],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[tfma.MetricsSpec(metrics=[metric_config])])
  # ExtractAndEvaluate takes batched extracts (it splits the leading axis into
  # examples): batches of two examples in [H, W], [1, H, W] and [H * W].
  examples = extracts_from_label_maps(label_maps,
                                      ("hw", "hw", "batch", "batch", "flat"))
  extracts = [
      _batched_features(examples[start:start + 2])
      for start in range(0, len(examples), 2)
  ]

  with beam.Pipeline() as pipeline:
    result = (
        pipeline
        | "Create" >> beam.Create(extracts)
        | "ExtractAndEvaluate" >> tfma.ExtractAndEvaluate(
            extractors=tfma.default_extractors(eval_config=eval_config),
            evaluators=tfma.default_evaluators(eval_config=eval_config)))

    def check(got):
      try:
        assert len(got) == 1
        slice_key, metric_values = got[0]
        assert slice_key == ()
        metric_values = {key: value for key, value in metric_values.items()
                         if key.name != "example_count"}
        _assert_metric_values_close(metric_values, expected)
      except AssertionError as error:
        raise beam_testing_util.BeamAssertException(error)

    beam_testing_util.assert_that(result["metrics"], check)


def test_tfma_combiner_merges_split_bundles():
  label_maps = random_panoptic_images(11, num_images=7, height=24, width=32,
                                      num_stuff=2, num_things=5, num_void=2)
  expected = _expected_metric_values(label_maps)
  computations = metrics.PanopticQuality().computations()
  assert len(computations) == 1
  combiner = computations[0].combiner
  inputs = [
      metric_types.StandardMetricInputs(extract)
      for extract in extracts_from_label_maps(label_maps, ("hw", "batch"))
  ]

  accumulators = []
  for bundle in (inputs[:1], inputs[1:4], [], inputs[4:]):
    accumulator = combiner.create_accumulator()
    for element in bundle:
      accumulator = combiner.add_input(accumulator, element)
    # Accumulators travel between Beam workers pickled.
    accumulators.append(pickle.loads(pickle.dumps(accumulator)))
  merged = combiner.merge_accumulators(
      [combiner.merge_accumulators(accumulators[:2]),
       combiner.merge_accumulators(accumulators[2:])])

  _assert_metric_values_close(combiner.extract_output(merged), expected)
  assert merged.tp.shape == (metrics.num_category_slots(_categories()),)


def test_tfma_metric_runs_its_computation_in_beam_pipeline():
  label_maps = random_panoptic_images(12, num_images=5, height=16, width=20,
                                      num_stuff=2, num_things=4, num_void=1)
  expected = _expected_metric_values(label_maps)
  computation, = metrics.PanopticQuality(
      categories=_categories()).computations(model_names=["candidate"])
  extracts = [{key: {"candidate": value} if key != "example_weights" else value
               for key, value in extract.items()}
              for extract in extracts_from_label_maps(label_maps, ("flat",))]

  with beam.Pipeline() as pipeline:
    result = (
        pipeline
        | "Create" >> beam.Create(extracts, reshuffle=True)
        | "ToInputs" >> beam.Map(metric_types.StandardMetricInputs)
        | "AddSliceKey" >> beam.Map(lambda element: ((), element))
        | "Combine" >> beam.CombinePerKey(computation.combiner))

    def check(got):
      try:
        assert len(got) == 1
        _, metric_values = got[0]
        assert {key.model_name for key in metric_values} == {"candidate"}
        _assert_metric_values_close(metric_values, expected)
      except AssertionError as error:
        raise beam_testing_util.BeamAssertException(error)

    beam_testing_util.assert_that(result, check)
