r"""Benchmark of the tf.Transform preprocessing on Beam's DirectRunner.

Measures Transform throughput (examples/s) over K copies of TFMG panoptic
records and the stored size of one transformed tf.Example (serialized, and
gzipped as TFX writes it) against the dense alternative of N uint8 [S, S]
masks.

  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/bench_transform.py \
      --copies=8 --output_size=640 --num_segment_slots=100

Without --raw_records, the real COCO sample in ../shared is converted with
TFMG's converter first. Throughput is reported twice: over the whole run
(pipeline start-up and graph tracing included) and as the marginal rate
between a 1-copy run and the K-copy run.
"""

import argparse
import gzip
import os
import pathlib
import sys
import tempfile
import time
from typing import Dict

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Beam's multi_processing workers are fresh interpreters: let them import the
# repository's packages even when it is not pip-installed.
os.environ['PYTHONPATH'] = os.pathsep.join(
    p for p in (str(_REPO_ROOT), os.environ.get('PYTHONPATH')) if p)
sys.path.insert(0, str(_REPO_ROOT))

import numpy as np  # pylint: disable=g-import-not-at-top,wrong-import-position
import tensorflow as tf  # pylint: disable=g-import-not-at-top,wrong-import-position

from transform_module import beam_runner  # pylint: disable=g-import-not-at-top,wrong-import-position

_COCO_SAMPLE_DIR = (_REPO_ROOT.parent / 'shared' / 'data' /
                    'coco_panoptic_sample')


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
  parser.add_argument('--raw_records', default=None,
                      help='Glob of TFMG panoptic TFRecords (default: convert '
                      'the real COCO sample in ../shared).')
  parser.add_argument('--copies', type=int, default=8,
                      help='K: how many times the records are repeated.')
  parser.add_argument('--output_size', type=int, default=640)
  parser.add_argument('--num_segment_slots', type=int, default=100)
  parser.add_argument('--direct_num_workers', type=int, default=2)
  parser.add_argument('--direct_running_mode', default='multi_processing',
                      choices=['in_memory', 'multi_threading',
                               'multi_processing'])
  parser.add_argument('--work_dir', default=None,
                      help='Scratch directory (default: a temporary one).')
  return parser.parse_args()


def _raw_records(args: argparse.Namespace, work_dir: pathlib.Path):
  """Serialized raw examples from --raw_records or the converted sample."""
  if args.raw_records:
    files = tf.io.gfile.glob(args.raw_records)
  else:
    from tfx_pipeline import coco_conversion  # pylint: disable=g-import-not-at-top
    files = coco_conversion.convert_coco_panoptic(
        image_dir=_COCO_SAMPLE_DIR / 'input_images',
        annotations_file=_COCO_SAMPLE_DIR / 'panoptic_examples.json',
        panoptic_masks_dir=_COCO_SAMPLE_DIR / 'panoptic_examples',
        output_prefix=work_dir / 'converted' / 'val')
  return [record.numpy() for record in
          tf.data.TFRecordDataset([str(f) for f in files])]


def _timed_transform(records, copies: int, run_dir: pathlib.Path,
                     args: argparse.Namespace) -> float:
  """Writes `copies` repetitions of `records`, transforms them, returns s."""
  run_dir.mkdir(parents=True)
  raw_file = str(run_dir / 'raw.tfrecord')
  with tf.io.TFRecordWriter(raw_file) as writer:
    for _ in range(copies):
      for record in records:
        writer.write(record)
  beam_args = ['--runner=DirectRunner',
               f'--direct_num_workers={args.direct_num_workers}',
               f'--direct_running_mode={args.direct_running_mode}']
  start = time.perf_counter()
  beam_runner.run_transform(
      raw_file, str(run_dir / 'output'),
      {'output_size': args.output_size,
       'num_segment_slots': args.num_segment_slots}, beam_args)
  return time.perf_counter() - start


def _feature_sizes(serialized: bytes):
  """(serialized, gzipped) bytes of each feature alone in a tf.Example."""
  example = tf.train.Example.FromString(serialized)
  sizes = {}
  for key, feature in example.features.feature.items():
    single = tf.train.Example()
    single.features.feature[key].CopyFrom(feature)
    data = single.SerializeToString()
    sizes[key] = (len(data), len(gzip.compress(data)))
  return sizes


def _image_encoding_sizes(serialized: bytes) -> Dict[str, int]:
  """Gzipped bytes of the example's `image` alone as float32 (the contract),
  int64 and raw uint8 bytes: what other output contracts would store."""
  example = tf.train.Example.FromString(serialized)
  pixels = np.array(example.features.feature['image'].float_list.value,
                    np.float32)
  features = {
      'float32': tf.train.Feature(float_list=tf.train.FloatList(
          value=pixels)),
      'int64': tf.train.Feature(int64_list=tf.train.Int64List(
          value=pixels.astype(np.int64))),
      'uint8 bytes': tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[pixels.astype(np.uint8).tobytes()])),
  }
  return {
      name: len(gzip.compress(tf.train.Example(features=tf.train.Features(
          feature={'image': feature})).SerializeToString()))
      for name, feature in features.items()}


def main() -> None:
  args = _parse_args()
  work_dir = pathlib.Path(args.work_dir or tempfile.mkdtemp(
      prefix='bench_transform_'))
  records = _raw_records(args, work_dir)
  base_seconds = _timed_transform(records, 1, work_dir / 'run_1', args)
  seconds = _timed_transform(records, args.copies,
                             work_dir / f'run_{args.copies}', args)
  num_examples = args.copies * len(records)
  marginal_rate = (num_examples - len(records)) / max(
      seconds - base_seconds, 1e-9)

  output_dir = work_dir / f'run_{args.copies}' / 'output'
  transformed = [record.numpy() for record in tf.data.TFRecordDataset(
      beam_runner.transformed_example_files(str(output_dir)),
      compression_type='GZIP')]
  raw_bytes = sum(len(t) for t in transformed) / len(transformed)
  gzip_bytes = sum(len(gzip.compress(t)) for t in transformed) / len(
      transformed)
  file_bytes = sum(os.path.getsize(f) for f in
                   beam_runner.transformed_example_files(str(output_dir)))
  dense_bytes = args.num_segment_slots * args.output_size**2
  input_bytes = sum(len(r) for r in records) / len(records)

  print(f'device: CPU ({os.cpu_count()} cores), DirectRunner '
        f'{args.direct_running_mode} x{args.direct_num_workers}; '
        f'S={args.output_size}, N={args.num_segment_slots}, '
        f'{len(records)} records x {args.copies} copies')
  print(f'transform: {num_examples} examples in {seconds:.1f} s = '
        f'{num_examples / seconds:.2f} examples/s (whole run); '
        f'1-copy run {base_seconds:.1f} s; marginal '
        f'{marginal_rate:.2f} examples/s')
  print(f'raw input tf.Example: {input_bytes / 1e6:.3f} MB/example')
  print(f'transformed tf.Example: {raw_bytes / 1e6:.3f} MB serialized, '
        f'{gzip_bytes / 1e6:.3f} MB gzipped per example; gzipped TFRecord '
        f'files {file_bytes / num_examples / 1e6:.3f} MB/example')
  print(f'dense [N, S, S] uint8 masks: {dense_bytes / 1e6:.2f} MB -> '
        f'{dense_bytes / raw_bytes:.1f}x smaller serialized, '
        f'{dense_bytes / gzip_bytes:.1f}x smaller gzipped')
  # The float32 `image` of the output contract alone bounds the ratio: a
  # record with dense masks would carry the same image.
  encodings = [_image_encoding_sizes(t) for t in transformed]
  image_gzip = sum(sizes['float32'] for sizes in encodings) / len(encodings)
  labels_gzip = gzip_bytes - image_gzip
  print(f'of it the float32 image alone: {image_gzip / 1e6:.3f} MB gzipped '
        f'(caps the ratio at {dense_bytes / image_gzip:.1f}x); everything '
        f'else ~{labels_gzip / 1e6:.3f} MB: slot labels '
        f'{dense_bytes / max(labels_gzip, 1):.0f}x smaller than dense masks')
  for name in ('int64', 'uint8 bytes'):
    size = sum(sizes[name] for sizes in encodings) / len(encodings)
    print(f'the image as {name} instead: {size / 1e6:.3f} MB gzipped '
          f'({dense_bytes / size:.1f}x below dense masks)')
  sizes = _feature_sizes(transformed[0])
  for key, (serialized, gzipped) in sorted(sizes.items(),
                                           key=lambda item: -item[1][0]):
    print(f'  {key:22s} {serialized / 1e6:8.3f} MB serialized '
          f'{gzipped / 1e6:8.3f} MB gzipped')

if __name__ == '__main__':
  main()
