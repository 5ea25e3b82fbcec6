"""Times the XLA-compiled Hungarian matcher against scipy on random costs.

Example:
  TF_USE_LEGACY_KERAS=1 python benchmarks/bench_matcher.py \
      --batch 16 --rows 100 --cols 100 --repeats 20
"""

import argparse
import time

import numpy as np
from scipy import optimize
import tensorflow as tf

from trainer_module.ops.hungarian_matching import hungarian_matching


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--batch", type=int, default=16)
  parser.add_argument("--rows", type=int, default=100)
  parser.add_argument("--cols", type=int, default=100)
  parser.add_argument("--repeats", type=int, default=10,
                      help="timed runs after one warm-up run")
  parser.add_argument("--seed", type=int, default=0)
  return parser.parse_args()


def _scipy_totals(costs: np.ndarray) -> np.ndarray:
  """Optimal total cost of each matrix, solved one by one with scipy."""
  totals = []
  for cost in costs:
    rows, cols = optimize.linear_sum_assignment(cost)
    totals.append(cost[rows, cols].astype(np.float64).sum())
  return np.array(totals)


def _median_ms(run, repeats: int) -> float:
  """Median wall time of `run()` in milliseconds."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def main() -> None:
  args = _parse_args()
  rng = np.random.default_rng(args.seed)
  costs = rng.uniform(0.0, 1.0, (args.batch, args.rows, args.cols)).astype(
      np.float32)
  costs_tensor = tf.constant(costs)
  matcher = tf.function(hungarian_matching, jit_compile=True)

  start = time.perf_counter()
  assignment = matcher(costs_tensor).numpy()
  compile_ms = 1e3 * (time.perf_counter() - start)
  xla_ms = _median_ms(lambda: matcher(costs_tensor).numpy(), args.repeats)
  scipy_ms = _median_ms(lambda: _scipy_totals(costs), args.repeats)

  xla_totals = np.array(
      [cost.astype(np.float64)[mask].sum()
       for cost, mask in zip(costs, assignment)])
  max_abs_diff = float(np.max(np.abs(xla_totals - _scipy_totals(costs))))

  device = tf.config.list_logical_devices()[-1].name
  print(f"batch={args.batch} rows={args.rows} cols={args.cols} "
        f"repeats={args.repeats} device={device}")
  print(f"{'solver':<28}{'ms / batch':>12}{'ratio':>10}")
  print(f"{'XLA hungarian_matching':<28}{xla_ms:>12.2f}"
        f"{xla_ms / scipy_ms:>9.2f}x")
  print(f"{'scipy linear_sum_assignment':<28}{scipy_ms:>12.2f}{1.0:>9.2f}x")
  print(f"first call (trace + compile + run): {compile_ms:.0f} ms")
  print(f"max |total cost difference| vs scipy: {max_abs_diff:.3g}")
  if max_abs_diff > 1e-4 * min(args.rows, args.cols):
    raise SystemExit("totals disagree with scipy")


if __name__ == "__main__":
  main()
