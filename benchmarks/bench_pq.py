"""Times PQ evaluation per image: our evaluator and TFMA combiner vs pq_compute.

The label maps are random but COCO-like: stuff bands covering the image,
thing boxes (several instances per category), void boxes and perturbed
predictions (see `trainer_module.evaluation.testing.random_panoptic_image`). The
COCO panoptic API's `pq_compute` is timed on the same data written as PNG + JSON,
so its time includes reading and decoding those files and its process pool.

Example:
  TF_USE_LEGACY_KERAS=1 python benchmarks/bench_pq.py --images 20
"""

import argparse
import contextlib
import io
import multiprocessing
from pathlib import Path
import tempfile
import time
from typing import Any, Callable, Dict

import numpy as np
from panopticapi.evaluation import pq_compute
from tensorflow_model_analysis.metrics import metric_types

from schemas import load_categories
from tfx_pipeline import metrics
from trainer_module.evaluation import panoptic_quality
from trainer_module.evaluation import testing as synthetic_panoptic


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--images", type=int, default=20)
  parser.add_argument("--height", type=int, default=480)
  parser.add_argument("--width", type=int, default=640)
  parser.add_argument("--stuff", type=int, default=5,
                      help="ground-truth stuff segments per image")
  parser.add_argument("--things", type=int, default=12,
                      help="ground-truth thing boxes per image")
  parser.add_argument("--void", type=int, default=3,
                      help="void boxes per image")
  parser.add_argument("--repeats", type=int, default=3,
                      help="timed runs of each method (the median is shown)")
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args()


def _median_seconds(run: Callable[[], Any], repeats: int) -> float:
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _combiner_add_inputs(combiner: Any, inputs: list) -> Any:
  accumulator = combiner.create_accumulator()
  for element in inputs:
    accumulator = combiner.add_input(accumulator, element)
  return accumulator


def _max_difference(got: Dict[str, Any], expected: Dict[str, Any]) -> float:
  return max(
      abs(got[group][quantity] - expected[group][quantity])
      for group in ("All", "Things", "Stuff")
      for quantity in ("pq", "sq", "rq"))


def main() -> None:
  args = _parse_args()
  categories = load_categories()
  label_maps = synthetic_panoptic.random_panoptic_images(
      args.seed, args.images, args.height, args.width, args.stuff,
      args.things, args.void)
  gt_segments = np.mean([
      np.unique(category * 2**16 + instance).size
      for category, instance in zip(label_maps[0], label_maps[1])
  ])

  ours_s = _median_seconds(
      lambda: panoptic_quality.compute_panoptic_quality(*label_maps, categories),
      args.repeats)
  combiner = metrics.PanopticQuality().computations()[0].combiner
  inputs = [
      metric_types.StandardMetricInputs(extract)
      for extract in synthetic_panoptic.extracts_from_label_maps(label_maps, ("hw",))
  ]
  combiner_s = _median_seconds(lambda: _combiner_add_inputs(combiner, inputs),
                               args.repeats)

  with tempfile.TemporaryDirectory() as directory:
    rng = np.random.default_rng(args.seed)
    start = time.perf_counter()
    gt_json = synthetic_panoptic.write_coco_panoptic(
        Path(directory), "gt", label_maps[0], label_maps[1], categories, rng)
    pred_json = synthetic_panoptic.write_coco_panoptic(
        Path(directory), "pred", label_maps[2], label_maps[3], categories, rng)
    write_s = time.perf_counter() - start
    with contextlib.redirect_stdout(io.StringIO()):
      coco_s = _median_seconds(
          lambda: pq_compute(str(gt_json), str(pred_json)), args.repeats)
      coco_result = pq_compute(str(gt_json), str(pred_json))

  ours_result = panoptic_quality.compute_panoptic_quality(*label_maps, categories)
  combiner_result = panoptic_quality.panoptic_quality_result(
      _combiner_add_inputs(combiner, inputs), categories)
  max_difference = max(_max_difference(ours_result, coco_result),
                       _max_difference(combiner_result, coco_result))

  def per_image_ms(seconds: float) -> float:
    return 1e3 * seconds / args.images

  print(f"images={args.images} size={args.height}x{args.width} "
        f"gt segments/image={gt_segments:.1f} (incl. void) "
        f"repeats={args.repeats} cpus={multiprocessing.cpu_count()}")
  print(f"{'method':<44}{'ms / image':>11}{'vs pq_compute':>15}")
  rows = (
      ("compute_panoptic_quality", ours_s),
      ("PanopticQuality CombineFn add_input", combiner_s),
      ("panopticapi pq_compute (PNG read + pool)", coco_s),
  )
  for name, seconds in rows:
    print(f"{name:<44}{per_image_ms(seconds):>11.2f}"
          f"{seconds / coco_s:>14.2f}x")
  print(f"(writing the PNG + JSON for pq_compute, not timed above: "
        f"{per_image_ms(write_s):.2f} ms / image)")
  pq_by_group = " / ".join(
      f"{ours_result[group]['pq']:.4f}" for group in ("All", "Things", "Stuff"))
  print(f"PQ all/things/stuff: {pq_by_group}; "
        f"max |difference| vs pq_compute: {max_difference:.3g}")
  if max_difference > 1e-9:
    raise SystemExit("results disagree with pq_compute")


if __name__ == "__main__":
  main()
