r"""Benchmark of the Trainer's tf.data input pipeline with `materialize=False`.

Raw TFMG records of the real COCO sample (repeated K times) are read by the
Trainer's own pipeline (`maskformer_input.build_dataset`, the training
`DataConfig` of the experiment): parse, the tf.Transform graph applied on the
fly, decoding of the encoded image and label rows, the reference augmentation
(flip, resize + random crop, random rescale), normalisation and batching.

  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/bench_input_pipeline.py \
      --batch_size=8 --batches=12

Reported as examples/s of wall clock (all cores of this machine; depends on
other jobs, the load average is printed) and as CPU time per example (this
process, all threads), i.e. examples per core-second. The per-slot mask
expansion (`segment_map == j` for the N slots, `tasks.maskformer.
build_targets`) runs in the train step on the accelerator; it is measured
too, as an extra map on the host, for the case that it ran there.

The supply of a TPU host is extrapolated as examples per core-second x its
vCPUs (112 for a v5e host of 4 chips): an upper bound that assumes linear
scaling over cores and ignores reading the records from GCS. The demand is the
train step's examples/s on that host, global batch / step time; the step time
of the production model on a TPU v5e is not measurable here, so the script
prints the break-even step time (the input keeps up when a step of the global
batch takes at least that long) and a FLOP-bound estimate of the demand: the
model's forward FLOPs at S (counted by the TF profiler on the forward graph),
x 3 for forward + backward (rule of thumb), against the chips' peak
(`--chip_peak_tflops`, 197 bf16 TFLOP/s for v5e, Google's published figure):
the most examples/s the host's chips could consume at 100% utilisation.
"""

import argparse
import os
import pathlib
import sys
import tempfile
import time

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO_ROOT))

import tensorflow as tf

from official.core import exp_factory
from trainer_module import registry_imports
from trainer_module.dataloaders import maskformer_input
from trainer_module.tasks import maskformer as maskformer_task
from transform_module import beam_runner

_COCO_SAMPLE_DIR = (_REPO_ROOT.parent / 'shared' / 'data' /
                    'coco_panoptic_sample')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic')
  parser.add_argument('--copies', type=int, default=16,
                      help='K: how many times the records are repeated.')
  parser.add_argument('--batch_size', type=int, default=8)
  parser.add_argument('--batches', type=int, default=16,
                      help='Timed batches (after 3 warm-up batches).')
  parser.add_argument('--host_vcpus', type=int, default=112,
                      help='vCPUs of the TPU host for the extrapolation.')
  parser.add_argument('--chips_per_host', type=int, default=4)
  parser.add_argument('--chip_peak_tflops', type=float, default=197.0,
                      help='Peak bf16 TFLOP/s of one chip (v5e: 197).')
  parser.add_argument('--work_dir', default=None,
                      help='Scratch directory (default: a temporary one).')
  return parser.parse_args()


def _write_inputs(work_dir: pathlib.Path, params, copies: int) -> str:
  """Converts the COCO sample, writes the transform graph; the raw file."""
  from panoptic_data import coco_conversion
  files = coco_conversion.convert_coco_panoptic(
      image_dir=_COCO_SAMPLE_DIR / 'input_images',
      annotations_file=_COCO_SAMPLE_DIR / 'panoptic_examples.json',
      panoptic_masks_dir=_COCO_SAMPLE_DIR / 'panoptic_examples',
      output_prefix=work_dir / 'converted' / 'val')
  pattern = str(work_dir / 'converted' / 'val-*')
  beam_runner.run_transform(
      pattern, str(work_dir / 'transform'),
      {'output_size': params.output_size,
       'num_segment_slots': params.num_segment_slots})
  records = [record.numpy() for record in
             tf.data.TFRecordDataset([str(f) for f in files])]
  raw_file = str(work_dir / 'raw.tfrecord')
  with tf.io.TFRecordWriter(raw_file) as writer:
    for _ in range(copies):
      for record in records:
        writer.write(record)
  return raw_file


def _forward_flops(experiment) -> float:
  """Float operations of one forward pass of the model at S (batch 1)."""
  from tensorflow.python.framework import convert_to_constants
  from trainer_module.modeling import factory
  model = factory.build_maskformer_model(experiment.task.model)
  size = experiment.task.train_data.output_size
  forward = tf.function(lambda images: model(images, training=False))
  frozen = convert_to_constants.convert_variables_to_constants_v2(
      forward.get_concrete_function(
          tf.TensorSpec([1, size, size, 3], tf.float32)))
  options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
  options['output'] = 'none'
  return float(tf.compat.v1.profiler.profile(
      graph=frozen.graph, options=options).total_float_ops)


def _time_batches(dataset: tf.data.Dataset, batches: int):
  """(wall s, CPU s) of `batches` batches after 3 warm-up batches."""
  iterator = iter(dataset)
  for _ in range(3):
    next(iterator)
  start, cpu_start = time.perf_counter(), time.process_time()
  for _ in range(batches):
    element = next(iterator)
  tf.nest.map_structure(lambda t: t.numpy(), element)
  return time.perf_counter() - start, time.process_time() - cpu_start


def main() -> None:
  args = _parse_args()
  work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(
      prefix='bench_input_pipeline_'))
  experiment = exp_factory.get_exp_config(args.experiment)
  params = experiment.task.train_data
  global_batch = params.global_batch_size  # Before the override below.
  raw_file = _write_inputs(work_dir, params, args.copies)
  params.override({
      'input_path': raw_file,
      'transform_graph_dir': str(work_dir / 'transform'),
      'compression_type': '',
      'global_batch_size': args.batch_size,
      'is_training': True,
  }, is_strict=False)
  num_slots = params.num_segment_slots

  dataset = maskformer_input.build_dataset(params)
  with_targets = dataset.map(
      lambda images, labels: (images, maskformer_task.build_targets(
          labels, num_slots)),
      num_parallel_calls=tf.data.AUTOTUNE)

  load_before = os.getloadavg()[0]
  results = {}
  for name, timed in (('input pipeline', dataset),
                      ('+ per-slot mask expansion', with_targets)):
    results[name] = _time_batches(timed, args.batches)
  load_after = os.getloadavg()[0]

  examples = args.batches * args.batch_size
  print(f'device: CPU ({os.cpu_count()} cores); experiment '
        f'{args.experiment}: S={params.output_size}, N={num_slots}, batch '
        f'{args.batch_size}, {examples} timed examples (real COCO sample x '
        f'{args.copies}, transform graph applied on the fly); load average '
        f'{load_before:.1f} before, {load_after:.1f} after')
  for name, (seconds, cpu) in results.items():
    per_core = examples / cpu
    print(f'{name}: {examples / seconds:.2f} examples/s wall '
          f'({os.cpu_count()} cores), CPU {cpu * 1e3 / examples:.0f} ms per '
          f'example = {per_core:.2f} examples per core-second')
  per_core = examples / results['input pipeline'][1]
  supply = per_core * args.host_vcpus
  print(f'extrapolated supply of a {args.host_vcpus}-vCPU TPU host '
        f'(linear in cores, upper bound): {supply:.0f} examples/s')
  print(f'demand: global batch {global_batch} per step on that host; the '
        f'input keeps up if a train step takes >= '
        f'{global_batch / supply:.3f} s (the v5e step time is not measured '
        'here)')
  flops = _forward_flops(experiment)
  peak = args.chips_per_host * args.chip_peak_tflops * 1e12
  min_step = global_batch * 3 * flops / peak
  print(f'FLOP bound: forward {flops / 1e9:.1f} GFLOP per example at '
        f'S={params.output_size}, x3 for training; {args.chips_per_host} '
        f'chips x {args.chip_peak_tflops:.0f} TFLOP/s peak -> a step of '
        f'{global_batch} takes >= {min_step * 1e3:.0f} ms, demand <= '
        f'{global_batch / min_step:.0f} examples/s at 100% utilisation '
        f'({global_batch / min_step / 2:.0f} at 50%); supply / peak demand = '
        f'{supply * min_step / global_batch:.2f}')


if __name__ == '__main__':
  main()
