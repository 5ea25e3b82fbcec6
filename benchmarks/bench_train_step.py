"""Times one MaskFormer train step: eager, tf.function and XLA.

The step is the task's full `train_step` (forward, Hungarian matching and
losses of every decoder output, gradients, AdamW update) on a synthetic batch
of transformed examples. Each mode is warmed up (trace/compile) and then run
`--repeats` times; the median is reported.

Example (the reference R50 setup at 640², batch 1, float32 on CPU):
  TF_USE_LEGACY_KERAS=1 python benchmarks/bench_train_step.py \
      --experiment maskformer_coco_panoptic --batch 1 --repeats 2
"""

import argparse
import time
from typing import Callable, Dict, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from trainer_module import registry_imports
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples

MODES = ('eager', 'function', 'xla')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic',
                      help='registered experiment (e.g. maskformer_tiny)')
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--image_size', type=int, default=None,
                      help="input side S (default: the experiment's)")
  parser.add_argument('--repeats', type=int, default=3,
                      help='timed steps per mode after the warm-up step')
  parser.add_argument('--modes', default=','.join(MODES),
                      help=f'comma-separated subset of {MODES}')
  parser.add_argument('--mixed_precision', default=None,
                      help="e.g. 'mixed_bfloat16' (default float32)")
  parser.add_argument('--segments', type=int, default=15,
                      help='ground-truth segments per image (2 stuff + '
                      'thing boxes; COCO averages ~11, the PyTorch baseline '
                      'uses 15)')
  parser.add_argument('--seed', type=int, default=0)
  return parser.parse_args()


def _synthetic_batch(batch: int, size: int, slots: int, segments: int,
                     seed: int) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
  """A training batch of random transformed examples."""
  rng = np.random.default_rng(seed)
  examples = [synthetic_examples.make_transformed_example(
      rng, size, slots, num_things=segments - 2) for _ in range(batch)]
  labels = {key: tf.constant(synthetic_examples.stack(examples, key), tf.int32)
            for key in maskformer_input.TRAIN_LABEL_KEYS}
  images = maskformer_input.normalize_image(
      tf.constant(synthetic_examples.stack(examples, 'image')), labels['pixel_valid'])
  return images, labels


def _time_mode(step: Callable[[], Dict[str, tf.Tensor]],
               repeats: int) -> Tuple[float, float, float]:
  """(warm-up seconds, median step seconds, last loss)."""
  start = time.perf_counter()
  step()['loss'].numpy()
  warmup = time.perf_counter() - start
  times = []
  loss = float('nan')
  for _ in range(repeats):
    start = time.perf_counter()
    loss = float(step()['loss'].numpy())
    times.append(time.perf_counter() - start)
  return warmup, float(np.median(times)), loss


def _train_step_fn(task, config, inputs
                  ) -> Callable[[], Dict[str, tf.Tensor]]:
  """A train step on `inputs` with a fresh model and optimizer."""
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  return lambda: task.train_step(inputs, model, optimizer)


def main() -> None:
  args = _parse_args()
  if args.mixed_precision:
    tf_keras.mixed_precision.set_global_policy(args.mixed_precision)
  config = exp_factory.get_exp_config(args.experiment)
  size = args.image_size or config.task.model.input_size[0]
  config.override({'task': {
      'model': {'input_size': [size, size, 3]},
      'train_data': {'output_size': size},
      'validation_data': {'output_size': size}}})
  task = task_factory.get_task(config.task)
  slots = config.task.train_data.num_segment_slots
  if args.segments < 3:
    raise SystemExit('--segments must be at least 3 (2 stuff + 1 thing)')
  inputs = _synthetic_batch(args.batch, size, slots, args.segments, args.seed)

  print(f'experiment={args.experiment} S={size} batch={args.batch} '
        f'queries={config.task.model.num_queries} slots={slots} '
        f'segments={args.segments} '
        f'policy={tf_keras.mixed_precision.global_policy().name} '
        f'repeats={args.repeats} '
        f'device={tf.config.list_logical_devices()[-1].name}')
  print(f"{'mode':<10}{'warm-up s':>12}{'s / step':>12}{'loss':>12}")
  for mode in args.modes.split(','):
    if mode not in MODES:
      raise SystemExit(f'unknown mode {mode!r}; expected one of {MODES}')
    # A fresh model and optimizer per mode: every mode starts from the same
    # kind of state.
    train_step = _train_step_fn(task, config, inputs)
    if mode != 'eager':
      train_step = tf.function(train_step, jit_compile=(mode == 'xla'))
    try:
      warmup, seconds, loss = _time_mode(train_step, args.repeats)
    except (tf.errors.OpError, ValueError) as error:
      message = str(error).strip().splitlines()[0][:200]
      print(f'{mode:<10} failed: {message}')
      continue
    print(f'{mode:<10}{warmup:>12.1f}{seconds:>12.3f}{loss:>12.4f}')


if __name__ == '__main__':
  main()
