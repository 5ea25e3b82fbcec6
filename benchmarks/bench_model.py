"""Counts MaskFormer parameters and times inference: eager, graph and XLA.

Inference = model forward + bilinear upsampling of the mask logits to the
input size + panoptic inference. `function` is the serving path (a TF graph
that upsamples and post-processes only the kept queries); `xla` compiles the
static-shape path (all queries), as on a TPU. An untrained model keeps no
query, so the first `--kept-queries` queries are made confident (+20 on class
7·q mod K, the rule of `benchmarks/torch_baseline/bench_torch_step.py`).

Example:
  TF_USE_LEGACY_KERAS=1 PYTHONPATH=. python benchmarks/bench_model.py \
      --model reference --image-size 640 --batch-size 1 --repeats 3
"""

import argparse
import time
from typing import Callable, Dict

import numpy as np
import tensorflow as tf
import tf_keras

from trainer_module.configs import maskformer_model as maskformer_cfg
from trainer_module.modeling import factory
from trainer_module.ops.panoptic_inference import panoptic_inference

# MaskFormer R50 + 6 encoder layers (PyTorch reference implementation).
REFERENCE_NUM_PARAMS = 45.04e6
# COCO panoptic: the first 80 contiguous classes are things.
NUM_THING_CLASSES = 80


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--model', choices=('reference', 'tiny'),
                      default='reference',
                      help='reference: R50 + 6 enc; tiny: smoke-test model')
  parser.add_argument('--image-size', type=int, default=None,
                      help='square input size (default: the config size)')
  parser.add_argument('--batch-size', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=5,
                      help='timed runs after the warm-up runs')
  parser.add_argument('--warmup', type=int, default=1,
                      help='untimed runs after the first (tracing) call')
  parser.add_argument('--precision', choices=('float32', 'mixed_bfloat16'),
                      default='float32')
  parser.add_argument('--kept-queries', type=int, default=15,
                      help='queries made confident before post-processing')
  parser.add_argument('--modes', default='eager,function,xla',
                      help='comma-separated subset of eager,function,xla')
  return parser.parse_args()


def _count_parameters(model: tf_keras.Model) -> Dict[str, int]:
  """Keras, PyTorch-style (no BN moving statistics) and trainable counts."""
  def size(variables):
    return sum(int(np.prod(v.shape)) for v in variables)

  moving = size(v for v in model.non_trainable_variables if 'moving_' in v.name)
  return {
      'keras_count_params': model.count_params(),
      'without_bn_moving_stats': model.count_params() - moving,
      'trainable (bn frozen)': size(model.trainable_variables),
  }


def _time_ms(run: Callable[[], object], repeats: int) -> np.ndarray:
  """Wall times of `run()` in milliseconds."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    run()
    times.append(1e3 * (time.perf_counter() - start))
  return np.array(times)


def _report(name: str, run: Callable[[], object], args: argparse.Namespace):
  first_ms = _time_ms(run, 1)[0]
  _time_ms(run, args.warmup)
  times = _time_ms(run, args.repeats)
  print(f'{name:>6}: first call {first_ms / 1e3:7.2f} s, then median '
        f'{np.median(times):8.1f} ms, min {times.min():8.1f} ms '
        f'over {args.repeats} runs')


def main() -> None:
  args = _parse_args()
  tf_keras.mixed_precision.set_global_policy(args.precision)
  if args.model == 'reference':
    config = maskformer_cfg.MaskFormerModel()
  else:
    config = maskformer_cfg.maskformer_tiny_model()
  if args.image_size:
    config.input_size = [args.image_size, args.image_size, 3]
  # As exported for serving (`trainer_module.export.restore_model`): the
  # auxiliary decoder layers' predictions are not computed.
  config.deep_supervision = False
  height, width, _ = config.input_size
  model = factory.build_maskformer_model(config)

  num_classes = config.num_classes
  thing_class_mask = tf.range(num_classes) < NUM_THING_CLASSES
  category_ids = tf.range(1, num_classes + 1)
  images = tf.random.stateless_normal(
      [args.batch_size, height, width, 3], seed=[0, 0])

  kept = min(args.kept_queries, config.num_queries)
  boost = np.zeros([1, config.num_queries, num_classes + 1], np.float32)
  boost[0, np.arange(kept), (7 * np.arange(kept)) % num_classes] = 20.0

  def infer(images, kept_queries_only):
    outputs = model(images, training=False)
    return panoptic_inference(outputs['class_logits'] + boost,
                              outputs['mask_logits'],
                              thing_class_mask=thing_class_mask,
                              category_ids=category_ids,
                              output_size=(height, width),
                              kept_queries_only=kept_queries_only)

  def run(fn):
    return lambda: {k: v.numpy() for k, v in fn(images).items()}

  # AutoGraph is not needed (no data-dependent Python control flow) and would
  # convert tf_keras internals, which TF 2.16 does not exclude.
  modes = {
      'eager': lambda x: infer(x, kept_queries_only=True),
      'function': tf.function(lambda x: infer(x, kept_queries_only=True),
                              autograph=False),
      'xla': tf.function(lambda x: infer(x, kept_queries_only=False),
                         jit_compile=True, autograph=False),
  }

  model(images[:1], training=False)
  print(f'model={args.model} input={height}x{width} batch={args.batch_size} '
        f'precision={args.precision} queries={config.num_queries} '
        f'classes={num_classes}')
  for name, count in _count_parameters(model).items():
    print(f'params {name:>24}: {count:,} ({count / 1e6:.2f}M, '
          f'{100 * (count / REFERENCE_NUM_PARAMS - 1):+.2f}% vs reference '
          f'{REFERENCE_NUM_PARAMS / 1e6:.2f}M)')
  print(f'kept queries: {kept}')
  for mode in args.modes.split(','):
    if mode not in modes:
      raise SystemExit(f'unknown mode {mode!r}; expected one of '
                       f'{sorted(modes)}')
    _report(mode, run(modes[mode]), args)


if __name__ == '__main__':
  main()
