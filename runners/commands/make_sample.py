"""`maskformer-tfx make-sample`: a synthetic COCO panoptic sample and its TF
Model Garden TFRecords (`panoptic_data.sample_data`); `default_sample`, the
data of `run` and `validate` without `--data`."""

import argparse
import json
import pathlib
from typing import Any

from runners.commands import arg_types

DEFAULT_SAMPLE_DIR = pathlib.Path('outputs') / 'sample'
SAMPLE_MARKER = 'SAMPLE_COMPLETE.json'


def add_parser(subparsers: Any) -> None:
  """Adds the `make-sample` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'make-sample',
      help='Write a synthetic COCO panoptic sample and its TFMG TFRecords.',
      description=(
          'Writes DIR/coco/{train,val}/images/*.jpg, DIR/coco/{train,val}/'
          'panoptic/*.png and DIR/coco/annotations/panoptic_{train,val}.json '
          'in the exact COCO panoptic format (133 real categories), then '
          'converts them with TF Model Garden\'s create_coco_tf_record into '
          'DIR/tfrecords/train-*.tfrecord and val-*.tfrecord. Deterministic '
          'for a seed.'))
  parser.add_argument('--output', required=True, type=pathlib.Path,
                      help='Output directory (created).')
  parser.add_argument('--num-train', type=arg_types.positive_int, default=64,
                      help='Train images (default 64).')
  parser.add_argument('--num-val', type=arg_types.positive_int, default=16,
                      help='Val images (default 16).')
  parser.add_argument('--image-size', type=arg_types.positive_int, default=128,
                      help='Square image side in pixels (default 128).')
  parser.add_argument('--seed', type=int, default=0, help='Random seed (default 0).')
  parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
  """Handler of `make-sample`; returns the process exit code."""
  from panoptic_data import sample_data
  record_dir = sample_data.make_sample_tfrecords(
      args.output, args.num_train, args.num_val, args.image_size, args.seed)
  print(f'COCO panoptic sample: {args.output / "coco"}')
  print(f'TFMG TFRecords:       {record_dir}')
  return 0


def default_sample(sample_dir: pathlib.Path = DEFAULT_SAMPLE_DIR) -> pathlib.Path:
  """The default sample's TFRecord directory, generated on first use."""
  from panoptic_data import sample_data
  settings = {'num_train': 64, 'num_val': 16, 'image_size': 128, 'seed': 0}
  marker = sample_dir / SAMPLE_MARKER
  if marker.exists() and json.loads(marker.read_text()) == settings:
    return sample_dir / 'tfrecords'
  print(f'Generating the synthetic COCO panoptic sample in {sample_dir} ...')
  record_dir = sample_data.make_sample_tfrecords(sample_dir, **settings)
  marker.write_text(json.dumps(settings))
  return record_dir
