"""Tests for the TFMA `PanopticQuality` metric: in Beam, against the exact
per-image evaluator (`trainer_module.evaluation.panoptic_quality`, tested
beside it), and its CombineFn's merging of split bundles.
"""

import json
import pickle
from typing import Any, Dict, Mapping, Sequence

import apache_beam as beam
from apache_beam.testing import util as beam_testing_util
import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from schemas import load_categories as _categories
from tfx_pipeline import metrics
from trainer_module.evaluation import panoptic_quality
from trainer_module.evaluation.testing import LabelMaps
from trainer_module.evaluation.testing import extracts_from_label_maps
from trainer_module.evaluation.testing import random_panoptic_images

_TOLERANCE = 1e-9


def _expected_metric_values(label_maps: LabelMaps) -> Dict[str, float]:
  return panoptic_quality.metric_values(
      panoptic_quality.compute_panoptic_quality(*label_maps, _categories()))


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
  assert merged.tp.shape == (
      panoptic_quality.num_category_slots(_categories()),)


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
