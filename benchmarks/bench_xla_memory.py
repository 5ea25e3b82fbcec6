"""XLA's memory plan of one MaskFormer train step per replica (compile only).

Compiles the task's full `train_step` (forward, matching and losses of every
decoder output, gradients, AdamW update) with `tf.function(jit_compile=True)`
for a synthetic batch of `--per-replica-batch` images, without running it
(`experimental_get_compiler_ir(...)(stage='optimized_hlo')`), with
`XLA_FLAGS=--xla_dump_to=DIR`, and reads XLA's buffer assignment of the step
(`trainer_module.xla_buffers`). The experiment's mixed-precision policy
(`runtime.mixed_precision_dtype`, bfloat16 for the COCO experiments) is used,
as the Trainer uses it.

Prints per batch size: XLA's "Total bytes used", the weights + optimizer
slots (the model's and the optimizer's variables), a TPU-tiling estimate of
the total (`xla_buffers.tpu_padded_total`: the `--largest` buffers padded)
and the compile time; then the
largest buffers with their HLO names and shapes (CPU and TPU-padded sizes);
with two or more batch sizes, the least-squares line bytes = fixed + B ·
per-image of the totals and of the TPU estimates (the figures of
`runners/vertex/tpu_memory.py`). Each batch size compiles in its own process.

Example (the production experiment at 1 and 2 images per replica; each
compile takes minutes on a CPU):
  TF_USE_LEGACY_KERAS=1 python benchmarks/bench_xla_memory.py \
      --experiment maskformer_coco_panoptic --per-replica-batch 1,2 \
      --json /tmp/plan.json
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

from trainer_module import xla_buffers

GIB = 2**30


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic')
  parser.add_argument('--per-replica-batch', default='1,2',
                      help='comma-separated images per replica')
  parser.add_argument('--segments', type=int, default=15,
                      help='ground-truth segments per image (>= 3)')
  parser.add_argument('--largest', type=int, default=8,
                      help='largest buffers to list per batch size and to '
                      'pad to TPU tiles in the estimate')
  parser.add_argument('--json', default=None,
                      help='also write the results to this JSON file')
  parser.add_argument('--child', type=int, default=None,
                      help=argparse.SUPPRESS)
  return parser.parse_args()


def _compile_step(args: argparse.Namespace, batch: int) -> Dict[str, Any]:
  """Compiles the train step in this process (XLA_FLAGS set by the parent)."""
  import tensorflow as tf
  from official.core import exp_factory
  from official.core import task_factory
  from official.modeling import performance
  from trainer_module import registry_imports
  sys.path.insert(0, str(pathlib.Path(__file__).parent))
  import bench_train_step

  config = exp_factory.get_exp_config(args.experiment)
  if config.runtime.mixed_precision_dtype:  # As TFMG's train_lib.
    performance.set_mixed_precision_policy(
        config.runtime.mixed_precision_dtype)
  task = task_factory.get_task(config.task)
  size = config.task.model.input_size[0]
  inputs = bench_train_step._synthetic_batch(
      batch, size, config.task.train_data.num_segment_slots, args.segments,
      seed=0)
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)

  def train_step(images, labels):
    return task.train_step((images, labels), model, optimizer)

  train_step.__name__ = f'memory_plan_b{batch}'
  start = time.perf_counter()
  tf.function(train_step, jit_compile=True).experimental_get_compiler_ir(
      *inputs)(stage='optimized_hlo')
  compile_s = time.perf_counter() - start
  variables = {id(v): v for v in model.variables + optimizer.variables()}
  weights = sum(int(np.prod(v.shape)) * v.dtype.size
                for v in variables.values())
  dumps = xla_buffers.find_dumps(
      pathlib.Path(os.environ['BENCH_XLA_DUMP']), f'_{train_step.__name__}_')
  if not dumps:
    raise RuntimeError('XLA wrote no buffer assignment of the train step')
  plan = max((xla_buffers.read(path) for path in dumps),
             key=lambda assignment: assignment.total_bytes)
  return {
      'batch': batch, 'S': size, 'compile_s': compile_s,
      'total_bytes': plan.total_bytes,
      'tpu_padded_total_bytes': xla_buffers.tpu_padded_total(
          plan, args.largest),
      'parameter_bytes': plan.parameter_bytes(),
      'weights_and_slots_bytes': weights,
      'policy': config.runtime.mixed_precision_dtype or 'float32',
      'largest': [{'name': v.name, 'shape': v.shape, 'bytes': v.size,
                   'tpu_padded_bytes': xla_buffers.tpu_padded_bytes(v)}
                  for v in plan.largest(args.largest)],
  }


def _fit(results: List[Dict[str, Any]], key: str) -> Dict[str, float]:
  """Least-squares bytes = fixed + batch · per_image."""
  batches = np.array([r['batch'] for r in results], float)
  values = np.array([r[key] for r in results], float)
  per_image, fixed = np.polyfit(batches, values, 1)
  return {'per_image_bytes': float(per_image), 'fixed_bytes': float(fixed)}


def main() -> None:
  args = _parse_args()
  if args.child is not None:
    print(json.dumps(_compile_step(args, args.child)))
    return
  if args.segments < 3:
    raise SystemExit('--segments must be at least 3 (2 stuff + 1 thing)')
  batches = [int(b) for b in args.per_replica_batch.split(',')]
  print(f'experiment={args.experiment} per-replica batches={batches}',
        flush=True)
  results = []
  for batch in batches:
    with tempfile.TemporaryDirectory() as dump_dir:
      env = dict(os.environ, BENCH_XLA_DUMP=dump_dir,
                 XLA_FLAGS=f'--xla_dump_to={dump_dir}')
      completed = subprocess.run(
          [sys.executable, __file__, '--child', str(batch)] + sys.argv[1:],
          capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
      last_line = (completed.stderr.strip().splitlines() or ['killed'])[-1]
      print(f'B={batch}: compile failed (exit {completed.returncode}): '
            f'{last_line[:300]}', flush=True)
      continue
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    results.append(result)
    print(f"B={batch} S={result['S']} policy={result['policy']}: "
          f"total {result['total_bytes'] / GIB:.3f} GiB, TPU-padded "
          f"estimate {result['tpu_padded_total_bytes'] / GIB:.3f} GiB, "
          f"weights + optimizer slots "
          f"{result['weights_and_slots_bytes'] / GIB:.3f} GiB "
          f"(entry parameters {result['parameter_bytes'] / GIB:.3f} GiB), "
          f"compiled in {result['compile_s']:.0f} s", flush=True)
    for value in result['largest']:
      print(f"    {value['bytes'] / 2**20:10.1f} MiB "
            f"(TPU {value['tpu_padded_bytes'] / 2**20:10.1f} MiB) "
            f"{value['name']}: {value['shape']}", flush=True)
  summary = {'experiment': args.experiment, 'results': results}
  if len({r['batch'] for r in results}) >= 2:
    summary['fit'] = _fit(results, 'total_bytes')
    summary['tpu_padded_fit'] = _fit(results, 'tpu_padded_total_bytes')
    for name in ('fit', 'tpu_padded_fit'):
      print(f"{name}: fixed {summary[name]['fixed_bytes'] / GIB:.3f} GiB + "
            f"B x {summary[name]['per_image_bytes'] / GIB:.3f} GiB")
  if args.json:
    partial = args.json + '.partial'
    with open(partial, 'w') as output:
      json.dump(summary, output, indent=1)
    os.replace(partial, args.json)


if __name__ == '__main__':
  main()
