"""`maskformer-tfx predict`: COCO panoptic predictions of an exported model
(`trainer_module.inference.predict`)."""

import argparse
from typing import Any

from runners.commands import arg_types
from trainer_module.inference import predict
from trainer_module.inference import prediction_output


def add_parser(subparsers: Any) -> None:
  """Adds the `predict` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'predict',
      help='Write COCO panoptic predictions of an exported model.',
      description=(
          'Runs an exported MaskFormer SavedModel on a directory of images or '
          'on TFRecord files of TF Model Garden COCO panoptic tf.Examples and '
          'writes OUTPUT/predictions.json (COCO panoptic results format), '
          'OUTPUT/predictions/*.png (segment ids as RGB at the original image '
          'size) and side-by-side overlays in OUTPUT/overlays/. An image '
          'that cannot be read or decoded is skipped and named with the '
          'reason; the exit status is '
          f'{prediction_output.EXIT_SKIPPED} if any was skipped.'))
  parser.add_argument('--model', required=True,
                      help='SavedModel directory (or a TFX model artifact / '
                      'Pusher directory: its latest SavedModel).')
  parser.add_argument('--input', required=True,
                      help='A directory of JPEG/PNG images, or TFRecord '
                      'file(s) / glob (.gz = GZIP).')
  arg_types.add_model_output_arguments(parser)
  parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
  """Handler of `predict`; returns the process exit code."""
  summary = predict.predict(args.model, args.input, args.output,
                            args.batch_size,
                            progress=lambda line: print(line, flush=True),
                            overwrite=args.overwrite)
  print(f'{summary.num_images} images, {summary.num_segments} segments.')
  print(f'COCO panoptic predictions: {summary.predictions_json}')
  print(f'Segment PNGs:              {summary.predictions_dir}')
  print(f'Overlays:                  {summary.overlays_dir}')
  return prediction_output.report_skipped(summary.skipped)
