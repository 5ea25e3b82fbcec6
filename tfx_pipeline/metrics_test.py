"""Tests for the panoptic quality evaluator and its TFMA metric.

References: the goldens in `<repo>/../shared/goldens` (computed with the COCO
panoptic API) and the COCO panoptic API itself (`panopticapi.evaluation.
pq_compute`) on random label maps written as PNG + JSON.
"""

import json
from pathlib import Path
import pickle
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import apache_beam as beam
from apache_beam.testing import util as beam_testing_util
import numpy as np
from PIL import Image
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_types

from tfx_pipeline import metrics

_SHARED_DIR = Path(__file__).resolve().parents[1] / ".." / "shared"
_GOLDENS_DIR = _SHARED_DIR / "goldens"
_TOLERANCE = 1e-9
_GROUPS = ("All", "Things", "Stuff")

LabelMaps = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _categories() -> List[Dict[str, Any]]:
  return metrics.load_coco_panoptic_categories()


def _category_ids(categories: Sequence[Mapping[str, Any]],
                  isthing: int) -> np.ndarray:
  return np.array([c["id"] for c in categories if c["isthing"] == isthing])


def _random_box(rng: np.random.Generator, height: int, width: int,
                min_fraction: float,
                max_fraction: float) -> Tuple[int, int, int, int]:
  """Returns (y0, y1, x0, x1) of a random box of the given relative size."""
  box_height = max(1, int(height * rng.uniform(min_fraction, max_fraction)))
  box_width = max(1, int(width * rng.uniform(min_fraction, max_fraction)))
  y0 = int(rng.integers(0, height - box_height + 1))
  x0 = int(rng.integers(0, width - box_width + 1))
  return y0, y0 + box_height, x0, x0 + box_width


def _jitter_box(rng: np.random.Generator, box: Tuple[int, int, int, int],
                height: int, width: int,
                amount: float) -> Tuple[int, int, int, int]:
  """Moves every edge of a box by up to `amount` of the box size."""
  y0, y1, x0, x1 = box
  dy = max(1, int(amount * (y1 - y0)))
  dx = max(1, int(amount * (x1 - x0)))
  y0 = int(np.clip(y0 + rng.integers(-dy, dy + 1), 0, height - 1))
  x0 = int(np.clip(x0 + rng.integers(-dx, dx + 1), 0, width - 1))
  y1 = int(np.clip(y1 + rng.integers(-dy, dy + 1), y0 + 1, height))
  x1 = int(np.clip(x1 + rng.integers(-dx, dx + 1), x0 + 1, width))
  return y0, y1, x0, x1


def random_panoptic_image(rng: np.random.Generator,
                          categories: Sequence[Mapping[str, Any]],
                          height: int, width: int, num_stuff: int,
                          num_things: int, num_void: int) -> LabelMaps:
  """Returns a random (gt_category, gt_instance, pred_category, pred_instance).

  The ground truth has `num_stuff` stuff bands covering the image, `num_things`
  thing boxes drawn from a few categories (so several instances share a
  category) and `num_void` void boxes. The prediction perturbs it: stuff band
  edges move and some bands change category; each edge of a thing box moves by
  up to 25% of the box size (some pairs fall below IoU 0.5), some things change
  category or disappear; spurious things appear, some lying mostly in
  ground-truth void; some pixels are void; instance ids are renumbered.
  """
  stuff_ids = rng.choice(_category_ids(categories, 0), num_stuff + 1,
                         replace=False)
  thing_pool = rng.choice(_category_ids(categories, 1),
                          max(1, num_things // 2), replace=False)
  gt_category = np.zeros((height, width), np.int32)
  gt_instance = np.zeros((height, width), np.int32)
  pred_category = np.zeros((height, width), np.int32)
  pred_instance = np.zeros((height, width), np.int32)

  edges = np.sort(rng.choice(np.arange(1, height), num_stuff - 1,
                             replace=False))
  gt_edges = np.concatenate([[0], edges, [height]])
  pred_edges = np.concatenate([[0], np.clip(
      edges + rng.integers(-height // 10, height // 10 + 1, edges.shape), 1,
      height - 1), [height]])
  for band in range(num_stuff):
    gt_category[gt_edges[band]:gt_edges[band + 1]] = stuff_ids[band]
    pred_stuff = stuff_ids[-1] if rng.random() < 0.15 else stuff_ids[band]
    pred_category[pred_edges[band]:pred_edges[band + 1]] = pred_stuff

  next_pred_instance = int(rng.integers(1, 1000))
  for instance in range(1, num_things + 1):
    category = rng.choice(thing_pool)
    y0, y1, x0, x1 = _random_box(rng, height, width, 0.1, 0.4)
    gt_category[y0:y1, x0:x1] = category
    gt_instance[y0:y1, x0:x1] = instance
    if rng.random() < 0.15:
      continue
    if rng.random() < 0.1:
      category = rng.choice(_category_ids(categories, 1))
    y0, y1, x0, x1 = _jitter_box(rng, (y0, y1, x0, x1), height, width, 0.25)
    pred_category[y0:y1, x0:x1] = category
    pred_instance[y0:y1, x0:x1] = next_pred_instance
    next_pred_instance += int(rng.integers(1, 5))

  for _ in range(num_void):
    box = _random_box(rng, height, width, 0.1, 0.3)
    gt_category[box[0]:box[1], box[2]:box[3]] = metrics.VOID_CATEGORY_ID
    gt_instance[box[0]:box[1], box[2]:box[3]] = 0
    if rng.random() < 0.7:
      # A prediction lying mostly (or, after jitter, partly) in void.
      y0, y1, x0, x1 = _jitter_box(rng, box, height, width, 0.3)
      pred_category[y0:y1, x0:x1] = rng.choice(thing_pool)
      pred_instance[y0:y1, x0:x1] = next_pred_instance
      next_pred_instance += 1

  for _ in range(int(rng.integers(1, 3))):
    y0, y1, x0, x1 = _random_box(rng, height, width, 0.05, 0.2)
    pred_category[y0:y1, x0:x1] = rng.choice(thing_pool)
    pred_instance[y0:y1, x0:x1] = next_pred_instance
    next_pred_instance += 1
  y0, y1, x0, x1 = _random_box(rng, height, width, 0.05, 0.15)
  pred_category[y0:y1, x0:x1] = metrics.VOID_CATEGORY_ID
  pred_instance[y0:y1, x0:x1] = 0
  return gt_category, gt_instance, pred_category, pred_instance


def random_panoptic_images(seed: int, num_images: int, height: int, width: int,
                           num_stuff: int, num_things: int,
                           num_void: int) -> LabelMaps:
  """Stacks `random_panoptic_image` label maps to [num_images, H, W]."""
  rng = np.random.default_rng(seed)
  categories = _categories()
  images = [
      random_panoptic_image(rng, categories, height, width, num_stuff,
                            num_things, num_void) for _ in range(num_images)
  ]
  return tuple(np.stack(maps) for maps in zip(*images))


def write_coco_panoptic(directory: Path, name: str, category: np.ndarray,
                        instance: np.ndarray,
                        categories: Sequence[Mapping[str, Any]],
                        rng: np.random.Generator) -> Path:
  """Writes [I, H, W] label maps as a COCO panoptic JSON + PNG folder.

  Each (category, instance) pair with a non-void category becomes a segment
  with a random id in [1, 2^24) stored as R + 256 G + 256^2 B; void is id 0.

  Returns:
    The JSON path; the PNGs are in the folder of the same name without .json.
  """
  png_dir = directory / name
  png_dir.mkdir(parents=True)
  annotations = []
  for image_id, (image_category,
                 image_instance) in enumerate(zip(category, instance)):
    key = image_category.astype(np.int64) * 2**31 + image_instance
    pairs, pixel_pair = np.unique(key, return_inverse=True)
    segment_ids = rng.choice(2**24 - 1, pairs.size, replace=False) + 1
    segment_ids[pairs // 2**31 == metrics.VOID_CATEGORY_ID] = 0
    id_map = segment_ids[pixel_pair.reshape(image_category.shape)]
    rgb = np.stack([id_map % 256, id_map // 256 % 256, id_map // 256**2],
                   axis=-1).astype(np.uint8)
    file_name = f"{image_id:06d}.png"
    Image.fromarray(rgb).save(png_dir / file_name)
    areas = np.bincount(pixel_pair.reshape(-1), minlength=pairs.size)
    segments_info = [{
        "id": int(segment_id),
        "category_id": int(pair // 2**31),
        "iscrowd": 0,
        "area": int(area),
    } for pair, segment_id, area in zip(pairs, segment_ids, areas)
                     if segment_id != 0]
    annotations.append({
        "image_id": image_id,
        "file_name": file_name,
        "segments_info": segments_info,
    })
  json_path = directory / f"{name}.json"
  json_path.write_text(
      json.dumps({
          "annotations": annotations,
          "categories": [dict(c) for c in categories],
      }))
  return json_path


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


def extracts_from_label_maps(label_maps: LabelMaps, layouts: Sequence[str]
                            ) -> List[Dict[str, Any]]:
  """Per-example TFMA extracts (labels/predictions dicts of masks).

  Args:
    label_maps: [I, H, W] gt_category, gt_instance, pred_category,
      pred_instance.
    layouts: cycled over the examples: "hw" ([H, W]), "batch" ([1, H, W]) or
      "flat" ([H * W]).
  """
  gt_category, gt_instance, pred_category, pred_instance = label_maps
  reshape = {
      "hw": lambda a: a,
      "batch": lambda a: a[np.newaxis],
      "flat": lambda a: a.reshape(-1),
  }
  extracts = []
  for index in range(gt_category.shape[0]):
    layout = reshape[layouts[index % len(layouts)]]
    extracts.append({
        "labels": {
            "category_mask": layout(gt_category[index]),
            "instance_mask": layout(gt_instance[index]),
        },
        "predictions": {
            "category_mask": layout(pred_category[index]),
            "instance_mask": layout(pred_instance[index]),
        },
        "example_weights": np.array([1.0], np.float32),
    })
  return extracts


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
