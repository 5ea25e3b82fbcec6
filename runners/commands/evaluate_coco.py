"""`maskformer-tfx evaluate-coco`: COCO's own panoptic quality of an exported
model (`trainer_module.evaluation.evaluate_coco`)."""

import argparse
import pathlib
from typing import Any

from runners.commands import arg_types
from trainer_module.evaluation import evaluate_coco
from trainer_module.inference import prediction_output


def add_parser(subparsers: Any) -> None:
  """Adds the `evaluate-coco` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'evaluate-coco',
      help="Score an exported model with COCO's own panoptic quality.",
      description=(
          'Runs an exported MaskFormer SavedModel on the images of a COCO '
          'panoptic ground truth, writes OUTPUT/predictions.json and '
          'OUTPUT/predictions/*.png (COCO panoptic results at the original '
          'image size) and prints PQ, SQ and RQ (All, Things, Stuff) with '
          "the COCO panoptic API's rules, crowd regions included; per-class "
          "values go to OUTPUT/pq.json. Unlike the pipeline gate's PQ (at "
          "the Transform's resolution, crowd as void) this is comparable "
          'with published COCO figures. An image that cannot be decoded is '
          'skipped and named; PQ is then over the others and the exit '
          f'status is {prediction_output.EXIT_SKIPPED}.'))
  parser.add_argument('--model', required=True,
                      help='SavedModel directory, TFX model artifact or '
                      'Pusher directory (as for predict).')
  parser.add_argument('--images', required=True,
                      help='Directory of the images (e.g. val2017/).')
  parser.add_argument('--panoptic-json', required=True,
                      help='COCO panoptic ground-truth JSON (e.g. '
                      'annotations/panoptic_val2017.json).')
  parser.add_argument('--panoptic-dir', required=True,
                      help='Directory of its panoptic PNGs (e.g. '
                      'annotations/panoptic_val2017/).')
  arg_types.add_model_output_arguments(parser)
  parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
  """Handler of `evaluate-coco`; returns the process exit code."""
  result, skipped = evaluate_coco.evaluate_coco(
      args.model, args.images, args.panoptic_json, args.panoptic_dir,
      args.output, args.batch_size, overwrite=args.overwrite)
  print()
  print('COCO panoptic quality (COCO panoptic API rules, original '
        'resolution, crowd regions included'
        + (f'; predicted images only, {len(skipped)} skipped' if skipped
           else '') + '):')
  for line in evaluate_coco.result_table(result):
    print(line)
  output = pathlib.Path(args.output)
  print()
  print(f'Predictions: {output / prediction_output.PREDICTIONS_JSON} and '
        f'{output / prediction_output.PREDICTIONS_DIR}/')
  print(f'PQ per class: {output / evaluate_coco.PQ_JSON}')
  return prediction_output.report_skipped(skipped)
