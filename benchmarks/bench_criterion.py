"""Time and peak memory of the MaskFormer criterion in a train step.

Runs the task's `build_losses` (Hungarian matching and the losses of the final
and every auxiliary decoder output) and the gradients of the total loss with
respect to the class and mask logits, on random logits and a synthetic
labelled batch of the experiment's size (`--segments` segments per image).
The model is left out: this measures what the criterion adds to a step.

Variants, each measured in its own process so that its peak memory is its own:
* `function`: `tf.function`; matched pairs only (dynamic shapes, as the
  reference), losses at the input resolution S (the task's criterion).
* `xla`: `tf.function(jit_compile=True)`; static shapes (all N slots'
  matched queries upsampled to S, `mask_losses.SLOT_CHUNK` slots at a time),
  as on a TPU.
* `function_stride4` / `xla_stride4`: the same with the targets subsampled to
  the mask logits' resolution (`segment_map[::4, ::4]`, the criterion before
  it followed the reference), for comparison.

Memory:
* `XLA plan GiB` (XLA variants): "Total bytes used" of XLA's buffer
  assignment of the compiled step (`XLA_FLAGS=--xla_dump_to`, read by
  `trainer_module.xla_buffers`): the memory the step's executable needs,
  inputs and outputs included, independent of the allocator and the load.
* `peak extra GiB`: the process's peak resident set size (VmHWM) during the
  timed steps, reset after the warm-up (`/proc/self/clear_refs`, Linux), minus
  the resident size just before them. TensorFlow's CPU allocator keeps freed
  memory, so a step that reuses what the warm-up allocated shows little here.
* `peak RSS GiB`: the process's peak resident set size from start to end
  (compilation included) minus the resident size before the first step.

To compare with another version of the criterion, run this script with that
version's `trainer_module` first on `PYTHONPATH` (e.g. a `git archive` of an
older commit in /tmp with `trainer_module/xla_buffers.py` copied in).

Example (the production experiment: S=640, Q=N=100, 6 outputs, 2 images):
  TF_USE_LEGACY_KERAS=1 python benchmarks/bench_criterion.py \
      --experiment maskformer_coco_panoptic --batch 2
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Dict

import numpy as np
import tensorflow as tf

from official.core import exp_factory
from official.core import task_factory
from trainer_module import registry_imports
from trainer_module import xla_buffers
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples
from trainer_module.tasks import maskformer as maskformer_task

VARIANTS = ('function', 'xla', 'function_stride4', 'xla_stride4')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic')
  parser.add_argument('--batch', type=int, default=2,
                      help='images per replica')
  parser.add_argument('--image_size', type=int, default=None,
                      help="input side S (default: the experiment's)")
  parser.add_argument('--segments', type=int, default=15,
                      help='ground-truth segments per image (>= 3)')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--variants', default=','.join(VARIANTS),
                      help=f'comma-separated subset of {VARIANTS}')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--child', default=None, help=argparse.SUPPRESS)
  return parser.parse_args()


def _proc_status_kib(field: str) -> int:
  with open('/proc/self/status') as status:
    for line in status:
      if line.startswith(field + ':'):
        return int(line.split()[1])
  raise RuntimeError(f'{field} not in /proc/self/status')


def _run_variant(args: argparse.Namespace, variant: str) -> Dict[str, float]:
  """Measures one variant in this process."""
  config = exp_factory.get_exp_config(args.experiment)
  size = args.image_size or config.task.model.input_size[0]
  task = task_factory.get_task(config.task)
  model_config = config.task.model
  queries = model_config.num_queries
  slots = config.task.train_data.num_segment_slots
  num_layers = (model_config.transformer_decoder.num_layers
                if model_config.deep_supervision else 1)
  rng = np.random.default_rng(args.seed)
  examples = [synthetic_examples.make_transformed_example(
      rng, size, slots, num_things=args.segments - 2)
              for _ in range(args.batch)]
  labels = {key: tf.constant(synthetic_examples.stack(examples, key), tf.int32)
            for key in maskformer_input.TRAIN_LABEL_KEYS}
  if variant.endswith('_stride4'):
    for key in ('segment_map', 'pixel_valid'):
      labels[key] = labels[key][:, ::4, ::4]
  logits_size = size // 4
  class_logits = tf.constant(rng.normal(
      size=[num_layers, args.batch, queries, model_config.num_classes + 1]),
                             tf.float32)
  mask_logits = tf.constant(rng.normal(
      0, 3, size=[num_layers, args.batch, logits_size, logits_size,
                  queries]), tf.float32)

  def step(class_logits, mask_logits):
    with tf.GradientTape() as tape:
      tape.watch([class_logits, mask_logits])
      outputs = {'class_logits': class_logits[-1],
                 'mask_logits': mask_logits[-1]}
      if num_layers > 1:
        outputs['aux_class_logits'] = class_logits[:-1]
        outputs['aux_mask_logits'] = mask_logits[:-1]
      losses = task.build_losses(labels, outputs)
    gradients = tape.gradient(losses[maskformer_task.TOTAL_LOSS],
                              [class_logits, mask_logits])
    return losses[maskformer_task.TOTAL_LOSS], gradients

  step = tf.function(step, jit_compile=variant.startswith('xla'))
  before_kib = _proc_status_kib('VmRSS')
  start = time.perf_counter()
  loss, _ = step(class_logits, mask_logits)
  float(loss)
  warmup = time.perf_counter() - start
  warmup_peak_kib = _proc_status_kib('VmHWM')
  with open('/proc/self/clear_refs', 'w') as clear_refs:
    clear_refs.write('5')  # Resets VmHWM to the current VmRSS.
  resting_kib = _proc_status_kib('VmRSS')
  times = []
  for _ in range(args.repeats):
    start = time.perf_counter()
    loss, gradients = step(class_logits, mask_logits)
    float(loss)
    _ = [g.numpy() for g in gradients]
    times.append(time.perf_counter() - start)
  peak_kib = _proc_status_kib('VmHWM')
  plans = [xla_buffers.read(path) for path in xla_buffers.find_dumps(
      pathlib.Path(os.environ['BENCH_XLA_DUMP']))]
  return {'warmup_s': warmup, 'step_s': float(np.median(times)),
          'loss': float(loss),
          'peak_extra_gib': (peak_kib - resting_kib) / 2**20,
          'peak_rss_gib': (max(peak_kib, warmup_peak_kib) - before_kib) / 2**20,
          'xla_plan_gib': (max(plan.total_bytes for plan in plans) / 2**30
                           if plans else float('nan')),
          'S': size, 'Q': queries, 'N': slots, 'layers': num_layers}


def main() -> None:
  args = _parse_args()
  if args.child:
    print(json.dumps(_run_variant(args, args.child)))
    return
  if args.segments < 3:
    raise SystemExit('--segments must be at least 3 (2 stuff + 1 thing)')
  print(f'experiment={args.experiment} batch={args.batch} '
        f'segments={args.segments} repeats={args.repeats}')
  print(f"{'variant':<18}{'warm-up s':>11}{'s / step':>10}"
        f"{'XLA plan GiB':>14}{'peak extra GiB':>16}{'peak RSS GiB':>14}"
        f"{'loss':>10}", flush=True)
  sizes = ''
  for variant in args.variants.split(','):
    if variant not in VARIANTS:
      raise SystemExit(f'unknown variant {variant!r}; expected {VARIANTS}')
    command = [sys.executable, __file__, '--child', variant] + sys.argv[1:]
    with tempfile.TemporaryDirectory() as dump_dir:
      completed = subprocess.run(
          command, capture_output=True, text=True, check=False,
          env=dict(os.environ, BENCH_XLA_DUMP=dump_dir,
                   XLA_FLAGS=f'--xla_dump_to={dump_dir}'))
    if completed.returncode != 0:
      last_line = (completed.stderr.strip().splitlines() or ['killed'])[-1]
      print(f'{variant:<18} failed (exit {completed.returncode}): '
            f'{last_line[:200]}', flush=True)
      continue
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"{variant:<18}{result['warmup_s']:>11.1f}{result['step_s']:>10.3f}"
          f"{result['xla_plan_gib']:>14.2f}{result['peak_extra_gib']:>16.2f}"
          f"{result['peak_rss_gib']:>14.2f}{result['loss']:>10.4f}",
          flush=True)
    sizes = (f"(S={result['S']}, Q={result['Q']}, N={result['N']}, "
             f"{result['layers']} decoder outputs)")
  print(sizes)


if __name__ == '__main__':
  main()
