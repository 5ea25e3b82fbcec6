"""Per-phase times and top TF ops of our train step and inference on CPU.

The counterpart of `benchmarks/hf_baseline/bench_hf_step.py`'s phase table.
Each part is timed as one `tf.function` (median and min of `--repeats` runs
after a warm-up), then `--trace_repeats` runs are traced with the TF
profiler and every op's self time (its time on an executor thread less the
ops nested in it) is summed by phase, from the op's name scope, and by op
type:

* train (`--experiment`, the task's own `train_step`): forward (the model's
  ops); matching + losses (the criterion of every decoder output, the
  XLA-compiled Hungarian solver included); backward (every gradient op);
  clip + AdamW update (the optimizer's ops);
* inference (the serving path without the tf.Transform graph: the encoded
  640x480 JPEG is decoded, resized into the top-left corner of S x S and
  normalised as the transform + `normalize_image` do): JPEG decode + resize;
  forward (no deep supervision, as exported); mask upsampling of the kept
  queries; panoptic post-processing; original-size output
  (`coco_panoptic_outputs`: id map, nearest resize, PNG). The first
  `--kept_queries` queries are made confident, as in the other benchmarks.

With `--inter_op 1` ops run one at a time, so the self times add up to the
step; with more inter-op threads, concurrent ops share the cores and each
op's time includes waiting for them.

Example (the figures in docs/performance.md):
  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/profile_step.py \\
      --image_size 640 --batch 1 --repeats 3 --threads 2 --inter_op 1
"""

import argparse
import collections
import pathlib
import tempfile
import time
from typing import Callable, List

import numpy as np
import tensorflow as tf

from official.core import exp_factory
from official.core import task_factory
from trainer_module import registry_imports  # pylint: disable=unused-import
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples
from trainer_module.ops import coco_panoptic_output
from trainer_module.ops.panoptic_inference import panoptic_inference

NUM_THING_CLASSES = 80
NUM_CATEGORIES = 201  # Greater than every COCO panoptic category id.


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic')
  parser.add_argument('--image_size', type=int, default=640)
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=2)
  parser.add_argument('--threads', type=int, default=2,
                      help='intra-op threads (inter-op: --inter_op)')
  parser.add_argument('--inter_op', type=int, default=0,
                      help='inter-op threads (0: TensorFlow chooses)')
  parser.add_argument('--segments', type=int, default=15)
  parser.add_argument('--kept_queries', type=int, default=15)
  parser.add_argument('--top', type=int, default=15,
                      help='op types to list by self time (0: no trace)')
  parser.add_argument('--trace_repeats', type=int, default=1)
  parser.add_argument('--parts', default='train,inference')
  return parser.parse_args()


def _seconds(fn: Callable[[], object], repeats: int) -> List[float]:
  """Wall seconds of `repeats` runs after one warm-up (tracing) run."""
  fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn())
    times.append(time.perf_counter() - start)
  return times


def _load() -> str:
  return ' '.join(pathlib.Path('/proc/loadavg').read_text().split()[:3])


def _train_step(task, config, images, labels) -> Callable[[], tf.Tensor]:
  """The task's train step on a fresh model and optimizer."""
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  return lambda: task.train_step((images, labels), model, optimizer)['loss']


def _inference(config, jpeg, size, kept_queries) -> Callable[[], object]:
  """Serving-path inference of `jpeg`, each phase in its name scope."""
  model_config = config.task.model.replace(deep_supervision=False)
  from trainer_module.modeling import factory  # pylint: disable=g-import-not-at-top
  model = factory.build_maskformer_model(model_config)
  num_classes = model_config.num_classes
  thing_class_mask = tf.range(num_classes) < NUM_THING_CLASSES
  category_ids = tf.range(1, num_classes + 1)
  boost = np.zeros([1, model_config.num_queries, num_classes + 1], np.float32)
  kept = np.arange(min(kept_queries, model_config.num_queries))
  boost[0, kept, (7 * kept) % num_classes] = 20.0

  def decode():
    image = tf.io.decode_jpeg(jpeg, channels=3)
    original_size = tf.shape(image)[:2]
    scale = size / tf.reduce_max(tf.cast(original_size, tf.float32))
    new_size = tf.cast(tf.round(tf.cast(original_size, tf.float32) * scale),
                       tf.int32)
    resized = tf.image.resize(tf.cast(image, tf.float32), new_size)
    padded = tf.image.pad_to_bounding_box(resized, 0, 0, size, size)
    valid = tf.image.pad_to_bounding_box(
        tf.ones(tf.concat([new_size, [1]], 0), tf.int32), 0, 0, size,
        size)[..., 0]
    pixel_valid = valid[None]
    return (maskformer_input.normalize_image(padded[None], pixel_valid),
            pixel_valid, original_size[None])

  def panoptic():
    with tf.name_scope('decode'):
      images, pixel_valid, original_size = decode()
    outputs = model(images, training=False)
    with tf.name_scope('panoptic'):
      result = panoptic_inference(
          outputs['class_logits'] + boost, outputs['mask_logits'],
          thing_class_mask=thing_class_mask, category_ids=category_ids,
          pixel_valid=pixel_valid, output_size=tf.shape(pixel_valid)[1:3],
          kept_queries_only=True)
    result['pixel_valid'] = pixel_valid
    result['original_size'] = original_size
    return result

  def original_size_output():
    result = panoptic()
    with tf.name_scope('original_size'):
      return coco_panoptic_output.coco_panoptic_outputs(result,
                                                        NUM_CATEGORIES)

  return original_size_output


def op_self_times(logdir: str) -> collections.Counter:
  """Self picoseconds by (op name, op type) of a TF profiler trace.

  Op events on the executor threads are named "name:type"; an op's self
  time excludes the ops nested in it (a function call's body).
  """
  from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=g-import-not-at-top
  self_ps = collections.Counter()
  for path in pathlib.Path(logdir).glob('plugins/profile/*/*.xplane.pb'):
    space = xplane_pb2.XSpace.FromString(path.read_bytes())
    for plane in space.planes:
      if not plane.name.startswith('/host:CPU'):
        continue
      for line in plane.lines:
        if line.name == 'python':
          continue
        events = sorted(
            ((event.offset_ps, event.duration_ps,
              plane.event_metadata[event.metadata_id].name)
             for event in line.events), key=lambda e: (e[0], -e[1]))
        stack = []
        for start, duration, name in events:
          if ':' not in name:
            continue
          while stack and stack[-1][0] + stack[-1][1] <= start:
            stack.pop()
          key = tuple(name.rsplit(':', 1))
          if stack:
            self_ps[stack[-1][2]] -= duration
          self_ps[key] += duration
          stack.append((start, duration, key))
  return self_ps


def train_phase(name: str, op_type: str) -> str:
  """The train-step phase of an op, from its name scope."""
  if name.startswith('gradient_tape/'):
    return 'backward'
  if 'AdamWeightDecay' in name or op_type.startswith('ResourceApply'):
    return 'clip + AdamW update'
  if name.startswith('maskformer/'):
    return 'forward'
  return 'matching + losses'


def inference_phase(name: str, op_type: str) -> str:
  """The inference phase of an op, from its name scope."""
  if name.startswith('decode/'):
    return 'JPEG decode + resize'
  if name.startswith('maskformer/'):
    return 'forward'
  if name.startswith('panoptic/'):
    return ('mask upsampling' if op_type.startswith('ResizeBilinear')
            else 'panoptic post-processing')
  if name.startswith('original_size/'):
    return 'original-size output (PNG)'
  return 'other'


def profile(fn: Callable[[], object], steps: int, count: int, title: str,
            phase_of: Callable[[str, str], str], phases: List[str]) -> None:
  """Prints the phase table and the top op types of `steps` traced runs."""
  with tempfile.TemporaryDirectory() as logdir:
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
      tf.nest.map_structure(lambda t: t.numpy(), fn())
    wall = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    self_ps = op_self_times(logdir)
  by_phase = collections.Counter()
  by_type = collections.Counter()
  for (name, op_type), ps in self_ps.items():
    by_phase[phase_of(name, op_type)] += ps / 1e12 / steps
    by_type[op_type] += ps / 1e12 / steps
  total = sum(by_phase.values())
  print(f'{title}: {wall:.3f} s per traced run; op self time by phase')
  for phase in phases + sorted(set(by_phase) - set(phases)):
    print(f'  {phase:<44}{by_phase[phase]:>9.3f}{by_phase[phase] / total:>7.0%}')
  print(f'  {"sum of op self times":<44}{total:>9.3f}')
  print(f'{title}: top {count} op types by self time (s per run)')
  for op_type, seconds in by_type.most_common(count):
    print(f'  {op_type:<44}{seconds:>9.3f}')


def main() -> None:
  args = _parse_args()
  tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  if args.inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
  config = exp_factory.get_exp_config(args.experiment)
  size = args.image_size
  config.override({'task': {
      'model': {'input_size': [size, size, 3]},
      'train_data': {'output_size': size},
      'validation_data': {'output_size': size}}})
  task = task_factory.get_task(config.task)
  rng = np.random.default_rng(0)
  slots = config.task.train_data.num_segment_slots
  examples = [synthetic_examples.make_transformed_example(
      rng, size, slots, num_things=args.segments - 2)
              for _ in range(args.batch)]
  labels = {key: tf.constant(synthetic_examples.stack(examples, key),
                             tf.int32)
            for key in maskformer_input.TRAIN_LABEL_KEYS}
  images = maskformer_input.normalize_image(
      tf.constant(synthetic_examples.stack(examples, 'image')),
      labels['pixel_valid'])
  # A 640x480 photo-like JPEG (smooth noise), resized into S x S.
  photo = tf.image.resize(tf.random.stateless_uniform(
      [60, 80, 3], seed=[1, 2], maxval=255.0), [480, 640])
  jpeg = tf.io.encode_jpeg(tf.cast(photo, tf.uint8), quality=90)
  print(f'experiment={args.experiment} S={size} batch={args.batch} '
        f'threads intra={args.threads} inter={args.inter_op or "default"} '
        f'repeats={args.repeats}')
  parts = args.parts.split(',')
  runs = []
  if 'train' in parts:
    runs.append(('train step', _train_step(task, config, images, labels),
                 train_phase, ['forward', 'matching + losses', 'backward',
                               'clip + AdamW update']))
  if 'inference' in parts:
    runs.append(('inference', _inference(config, jpeg, size,
                                         args.kept_queries),
                 inference_phase,
                 ['JPEG decode + resize', 'forward', 'mask upsampling',
                  'panoptic post-processing', 'original-size output (PNG)']))
  for title, fn, phase_of, names in runs:
    fn = tf.function(fn, autograph=False)
    times = _seconds(fn, args.repeats)
    print(f'{title} (tf.function): median {np.median(times):.3f} s, min '
          f'{np.min(times):.3f} s of {args.repeats} after the warm-up; '
          f'load {_load()}')
    if args.top:
      profile(fn, args.trace_repeats, args.top, title, phase_of, names)


if __name__ == '__main__':
  main()
