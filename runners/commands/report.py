"""`maskformer-tfx report PIPELINE_ROOT`: the review page of a local run
(`tfx_pipeline.report`)."""

import argparse
import sys
from typing import Any

from runners.commands import arg_types
from tfx_pipeline.report import local_root
from tfx_pipeline.report import mlmd_run
from tfx_pipeline.report import page as page_lib
from tfx_pipeline.report import run_record


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
  """Registers `report PIPELINE_ROOT [--run RUN_ID] [--output FILE.html]`."""
  parser = subparsers.add_parser(
      'report',
      help='Write the review page (HTML) of a pipeline run.',
      description=(
          'Writes one self-contained HTML page (no network needed) for a run '
          'found in PIPELINE_ROOT/metadata.sqlite: data statistics, schema '
          'and anomalies; panoptic quality and the gate decision; training '
          'curves; example predictions; provenance. Sections the run did '
          'not produce say why.'))
  parser.add_argument('pipeline_root', metavar='PIPELINE_ROOT',
                      help='Pipeline root of a local run (holds '
                      'metadata.sqlite).')
  parser.add_argument('--run', dest='run_id', default=None, metavar='RUN_ID',
                      help='Pipeline run id (default: the latest run).')
  parser.add_argument('--output', default=None, metavar='FILE.html',
                      help='Output file (default PIPELINE_ROOT/reports/'
                      'run-<RUN_ID>.html).')
  parser.add_argument('--num-examples', type=arg_types.positive_int,
                      default=page_lib.DEFAULT_NUM_EXAMPLES,
                      help='Eval images with predictions (default '
                      f'{page_lib.DEFAULT_NUM_EXAMPLES}).')
  parser.add_argument('--list-runs', action='store_true',
                      help='List the run ids of PIPELINE_ROOT and exit.')
  parser.set_defaults(handler=handle)
  return parser


def handle(args: argparse.Namespace) -> int:
  """Handler of the `report` subcommand."""
  try:
    if args.list_runs:
      for run_id, started in mlmd_run.list_runs(args.pipeline_root):
        print(f'{run_id}\t{started.isoformat(sep=" ", timespec="seconds")}')
      return 0
    path = local_root.write_report(args.pipeline_root, args.run_id,
                                   args.output, args.num_examples)
  except run_record.ReportError as error:
    print(f'maskformer-tfx report: {error}', file=sys.stderr)
    return 1
  print(f'Review report: {path}')
  return 0
