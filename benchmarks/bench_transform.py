r"""Benchmark of the tf.Transform preprocessing on Beam's DirectRunner.

Measures Transform throughput over K copies of TFMG panoptic records and the
stored size of one transformed tf.Example (serialized, and gzipped as TFX
writes it) against the dense alternative of N uint8 [S, S] masks.

  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/bench_transform.py \
      --copies=64 --output_size=640 --num_segment_slots=100

Without --raw_records, the real COCO sample in ../shared is converted with
TFMG's converter first. Throughput is the marginal rate between 1-copy runs
and the K-copy run (pipeline start-up and graph tracing cancel out). A 1-copy
run is made before and after the K-copy run and the cheaper one is the
baseline: the first run of a process may pay cold caches (shared libraries,
files), which would inflate the baseline and hence the marginal rate; the
cheaper baseline gives the lower, conservative rate. Twice:
* wall clock: examples/s of the whole DirectRunner with W workers; divided by
  the cores it can use, min(W, cores), for a per-core figure. It depends on
  what else runs on the machine (the load average is printed).
* CPU time: CPU seconds of this process and its (Beam worker) children per
  example, i.e. examples per core-second. Much less sensitive to other jobs.
  The share of this process (the DirectRunner's runner; its children are
  the workers) is printed too.
A profile of the per-example cost follows: the preprocessing_fn graph alone
(one thread, CPU time per example) and the gzip of the written record (zlib
level 6, what Beam's `.gz` TFRecord writer uses); the rest of the marginal CPU
time is Beam, tf.Transform's Arrow conversion and the tf.Example encoding.
Last, each feature of the first transformed example alone: serialized and
gzipped size and gzip CPU time (what each output costs the writer).

With --with_statistics, PanopticStatisticsGen's Beam pipeline (decode the
masks, derive the segment features, TFDV statistics; tfx_pipeline/drift) runs
on the same raw files beside each Transform run, with the same runner, and
its marginal CPU time per example is printed as a share of the Transform's,
with the derivation alone (one thread) for the profile.
"""

import argparse
import gzip
import os
import pathlib
import resource
import sys
import tempfile
import time
import zlib
from typing import Sequence, Tuple

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Beam's multi_processing workers are fresh interpreters: let them import the
# repository's packages even when it is not pip-installed.
os.environ['PYTHONPATH'] = os.pathsep.join(
    p for p in (str(_REPO_ROOT), os.environ.get('PYTHONPATH')) if p)
sys.path.insert(0, str(_REPO_ROOT))

import tensorflow as tf

from transform_module import beam_runner
from transform_module import preprocessing

_COCO_SAMPLE_DIR = (_REPO_ROOT.parent / 'shared' / 'data' /
                    'coco_panoptic_sample')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--raw_records', default=None,
                      help='Glob of TFMG panoptic TFRecords (default: convert '
                      'the real COCO sample in ../shared).')
  parser.add_argument('--copies', type=int, default=64,
                      help='K: how many times the records are repeated.')
  parser.add_argument('--output_size', type=int, default=640)
  parser.add_argument('--num_segment_slots', type=int, default=100)
  parser.add_argument('--direct_num_workers', type=int, default=2)
  parser.add_argument('--direct_running_mode', default='multi_processing',
                      choices=['in_memory', 'multi_threading',
                               'multi_processing'])
  parser.add_argument('--graph_repeats', type=int, default=10,
                      help='Repeats of the preprocessing_fn graph timing.')
  parser.add_argument('--with_statistics', action='store_true',
                      help='Also time PanopticStatisticsGen\'s pipeline on '
                      'the same records, beside each Transform run.')
  parser.add_argument('--work_dir', default=None,
                      help='Scratch directory (default: a temporary one).')
  return parser.parse_args()


def _raw_records(args: argparse.Namespace, work_dir: pathlib.Path):
  """Serialized raw examples from --raw_records or the converted sample."""
  if args.raw_records:
    files = tf.io.gfile.glob(args.raw_records)
  else:
    from panoptic_data import coco_conversion
    files = coco_conversion.convert_coco_panoptic(
        image_dir=_COCO_SAMPLE_DIR / 'input_images',
        annotations_file=_COCO_SAMPLE_DIR / 'panoptic_examples.json',
        panoptic_masks_dir=_COCO_SAMPLE_DIR / 'panoptic_examples',
        output_prefix=work_dir / 'converted' / 'val')
  return [record.numpy() for record in
          tf.data.TFRecordDataset([str(f) for f in files])]


def _cpu_seconds() -> Tuple[float, float]:
  """CPU time of this process and of its terminated children, and of this
  process alone (the DirectRunner's runner; the children are its workers)."""
  children = resource.getrusage(resource.RUSAGE_CHILDREN)
  own = time.process_time()
  return own + children.ru_utime + children.ru_stime, own


def _timed_transform(records, copies: int, run_dir: pathlib.Path,
                     args: argparse.Namespace
                     ) -> Tuple[float, float, float]:
  """Transforms `copies` repetitions of `records`.

  Returns:
    (wall s, CPU s of all processes, CPU s of this process alone).
  """
  run_dir.mkdir(parents=True)
  raw_file = str(run_dir / 'raw.tfrecord')
  with tf.io.TFRecordWriter(raw_file) as writer:
    for _ in range(copies):
      for record in records:
        writer.write(record)
  beam_args = ['--runner=DirectRunner',
               f'--direct_num_workers={args.direct_num_workers}',
               f'--direct_running_mode={args.direct_running_mode}']
  start, cpu_start = time.perf_counter(), _cpu_seconds()
  beam_runner.run_transform(
      raw_file, str(run_dir / 'output'),
      {'output_size': args.output_size,
       'num_segment_slots': args.num_segment_slots}, beam_args)
  cpu_end = _cpu_seconds()
  return (time.perf_counter() - start, cpu_end[0] - cpu_start[0],
          cpu_end[1] - cpu_start[1])


def _timed_statistics(run_dir: pathlib.Path, args: argparse.Namespace
                      ) -> Tuple[float, float, float]:
  """PanopticStatisticsGen's pipeline on the raw file `_timed_transform`
  wrote in `run_dir`; returns as `_timed_transform`."""
  import apache_beam as beam
  from apache_beam.options.pipeline_options import PipelineOptions
  from tfx_pipeline.drift import statistics_gen
  beam_args = ['--runner=DirectRunner',
               f'--direct_num_workers={args.direct_num_workers}',
               f'--direct_running_mode={args.direct_running_mode}']
  start, cpu_start = time.perf_counter(), _cpu_seconds()
  with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
    statistics_gen.derive_statistics(
        pipeline, str(run_dir / 'raw.tfrecord'),
        str(run_dir / 'statistics' / 'FeatureStats.pb'), 'bench')
  cpu_end = _cpu_seconds()
  return (time.perf_counter() - start, cpu_end[0] - cpu_start[0],
          cpu_end[1] - cpu_start[1])


def _derive_cpu_ms(records: Sequence[bytes], repeats: int) -> float:
  """CPU ms per example of the statistics' feature derivation alone."""
  from tfx_pipeline.drift import panoptic_features
  derive = panoptic_features.FeatureDeriver()
  derive(records[0])
  start = time.process_time()
  for _ in range(repeats):
    for record in records:
      derive(record)
  return (time.process_time() - start) * 1e3 / (repeats * len(records))


def _graph_cpu_ms(records: Sequence[bytes], args: argparse.Namespace) -> float:
  """CPU ms per example of the preprocessing_fn graph alone (one thread)."""
  raw = tf.io.parse_example(tf.constant(records),
                            preprocessing.raw_feature_spec())
  config = {'output_size': args.output_size,
            'num_segment_slots': args.num_segment_slots}
  function = tf.function(
      lambda features: preprocessing.preprocessing_fn(features, config))
  function(raw)
  start = time.process_time()
  for _ in range(args.graph_repeats):
    function(raw)
  return ((time.process_time() - start) * 1e3 /
          (args.graph_repeats * len(records)))


def _gzip_cpu_ms(transformed: Sequence[bytes]) -> float:
  """CPU ms per record of zlib level 6 (Beam's gzip TFRecord writer)."""
  start = time.process_time()
  for record in transformed:
    zlib.compress(record, 6)
  return (time.process_time() - start) * 1e3 / len(transformed)


def _feature_sizes(serialized: bytes, repeats: int = 5):
  """(serialized bytes, gzipped bytes, gzip CPU ms) of each feature alone in
  a tf.Example."""
  example = tf.train.Example.FromString(serialized)
  sizes = {}
  for key, feature in example.features.feature.items():
    single = tf.train.Example()
    single.features.feature[key].CopyFrom(feature)
    data = single.SerializeToString()
    start = time.process_time()
    for _ in range(repeats):
      compressed = zlib.compress(data, 6)
    sizes[key] = (len(data), len(compressed),
                  (time.process_time() - start) * 1e3 / repeats)
  return sizes


def main() -> None:
  args = _parse_args()
  # One thread in this process, so that the graph timing is per core (the
  # Beam workers are other processes with their own settings).
  tf.config.threading.set_intra_op_parallelism_threads(1)
  tf.config.threading.set_inter_op_parallelism_threads(1)
  work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(
      prefix='bench_transform_'))
  records = _raw_records(args, work_dir)
  load_before = os.getloadavg()[0]
  statistics = []
  base_before = _timed_transform(records, 1, work_dir / 'run_1', args)
  if args.with_statistics:
    statistics.append(_timed_statistics(work_dir / 'run_1', args))
  seconds, cpu, runner_cpu = _timed_transform(
      records, args.copies, work_dir / f'run_{args.copies}', args)
  if args.with_statistics:
    statistics.append(_timed_statistics(work_dir / f'run_{args.copies}', args))
  base_after = _timed_transform(records, 1, work_dir / 'run_1_after', args)
  if args.with_statistics:
    statistics.append(_timed_statistics(work_dir / 'run_1_after', args))
  load_after = os.getloadavg()[0]
  # Each of wall and CPU time from the cheaper 1-copy run (see the docstring).
  base_seconds = min(base_before[0], base_after[0])
  base_cpu = min(base_before[1], base_after[1])
  base_runner_cpu = min(base_before[2], base_after[2])
  num_examples = args.copies * len(records)
  extra = num_examples - len(records)
  marginal_rate = extra / max(seconds - base_seconds, 1e-9)
  cores = min(args.direct_num_workers, os.cpu_count() or 1)
  if args.direct_running_mode == 'in_memory':
    cores = 1
  cpu_per_example = (cpu - base_cpu) / extra
  runner_cpu_per_example = (runner_cpu - base_runner_cpu) / extra

  output_dir = work_dir / f'run_{args.copies}' / 'output'
  transformed = [record.numpy() for record in tf.data.TFRecordDataset(
      beam_runner.transformed_example_files(str(output_dir)),
      compression_type='GZIP')]
  graph_ms = _graph_cpu_ms(records, args)
  gzip_ms = _gzip_cpu_ms(transformed[:2 * len(records)])
  raw_bytes = sum(len(t) for t in transformed) / len(transformed)
  gzip_bytes = sum(len(gzip.compress(t, 6)) for t in transformed[
      :len(records)]) / len(records)
  file_bytes = sum(os.path.getsize(f) for f in
                   beam_runner.transformed_example_files(str(output_dir)))
  dense_bytes = args.num_segment_slots * args.output_size**2
  input_bytes = sum(len(r) for r in records) / len(records)

  print(f'device: CPU ({os.cpu_count()} cores), DirectRunner '
        f'{args.direct_running_mode} x{args.direct_num_workers}; '
        f'S={args.output_size}, N={args.num_segment_slots}, '
        f'{len(records)} records x {args.copies} copies; load average '
        f'{load_before:.1f} before, {load_after:.1f} after the runs')
  print(f'transform wall: {num_examples} examples in {seconds:.1f} s '
        f'({num_examples / seconds:.2f} examples/s whole run), 1-copy runs '
        f'{base_before[0]:.1f} s before, {base_after[0]:.1f} s after '
        f'(CPU {base_before[1]:.1f} / {base_after[1]:.1f} s); marginal '
        f'{marginal_rate:.2f} examples/s = {marginal_rate / cores:.2f} '
        f'examples/s per core ({cores} cores)')
  print(f'transform CPU time: marginal {cpu_per_example * 1e3:.1f} ms per '
        f'example = {1 / cpu_per_example:.2f} examples per core-second; of '
        f'which the runner process {runner_cpu_per_example * 1e3:.1f} ms, '
        f'the workers {(cpu_per_example - runner_cpu_per_example) * 1e3:.1f} '
        'ms')
  print(f'profile (CPU ms per example): preprocessing_fn graph '
        f'{graph_ms:.1f}, gzip of the record {gzip_ms:.1f}, the rest (Beam, '
        f'Arrow, tf.Example encoding, I/O) '
        f'{cpu_per_example * 1e3 - graph_ms - gzip_ms:.1f}')
  print(f'raw input tf.Example: {input_bytes / 1e6:.3f} MB/example')
  print(f'transformed tf.Example: {raw_bytes / 1e6:.3f} MB serialized, '
        f'{gzip_bytes / 1e6:.3f} MB gzipped per example; gzipped TFRecord '
        f'files {file_bytes / num_examples / 1e6:.3f} MB/example')
  print(f'dense [N, S, S] uint8 masks: {dense_bytes / 1e6:.2f} MB -> '
        f'{dense_bytes / raw_bytes:.1f}x smaller serialized, '
        f'{dense_bytes / gzip_bytes:.1f}x smaller gzipped')
  if args.with_statistics:
    before, many, after = statistics
    statistics_cpu = (many[1] - min(before[1], after[1])) / extra
    derive_ms = _derive_cpu_ms(records, args.graph_repeats)
    print(f'panoptic statistics CPU time: marginal {statistics_cpu * 1e3:.2f} '
          f'ms per example = {100 * statistics_cpu / cpu_per_example:.1f} % '
          f'of the Transform\'s {cpu_per_example * 1e3:.1f} ms (runs '
          f'{before[0]:.1f} / {many[0]:.1f} / {after[0]:.1f} s wall); '
          f'derivation alone (mask decoding and segments, one thread) '
          f'{derive_ms:.2f} ms')
  print('per feature (first example):')
  sizes = _feature_sizes(transformed[0])
  for key, (serialized, gzipped, gzip_ms) in sorted(
      sizes.items(), key=lambda item: -item[1][0]):
    print(f'  {key:22s} {serialized / 1e6:8.3f} MB serialized '
          f'{gzipped / 1e6:8.3f} MB gzipped, gzip {gzip_ms:5.2f} ms')


if __name__ == '__main__':
  main()
