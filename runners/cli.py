"""`maskformer-tfx`: the command-line entry point, which dispatches to the
subcommands of `runners.commands` (one module each). It is the top layer:
nothing imports it but tests that run a subcommand end to end.

Importing the `tfx_pipeline` package selects Keras 2 (TF_USE_LEGACY_KERAS=1)
before TensorFlow loads; heavy imports happen inside the subcommands so that
`--help` is instant.
"""

import argparse
import os
import sys
import warnings
from typing import Optional, Sequence

# Keep TensorFlow's C++ start-up chatter and Google client libraries'
# Python-version notices off the terminal (run logs keep the rest).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
warnings.filterwarnings('ignore', category=FutureWarning, module='google')

from runners import tf_startup

# Whatever of these imports TensorFlow: its C++ start-up lines are dropped.
with tf_startup.startup_lines_filtered():
  from runners.commands import compile_vertex
  from runners.commands import diff_test
  from runners.commands import errors
  from runners.commands import evaluate_coco
  from runners.commands import import_weights
  from runners.commands import make_sample
  from runners.commands import predict
  from runners.commands import rehearse_vertex
  from runners.commands import report
  from runners.commands import run
  from runners.commands import validate

# In the order `maskformer-tfx --help` lists them.
COMMANDS = (run, validate, make_sample, compile_vertex, rehearse_vertex,
            report, predict, import_weights, diff_test, evaluate_coco)


def build_parser() -> argparse.ArgumentParser:
  """The `maskformer-tfx` argument parser."""
  parser = argparse.ArgumentParser(
      prog='maskformer-tfx',
      description='Train, validate and ship MaskFormer panoptic segmentation '
      'models with TFX and TF Model Garden.')
  subparsers = parser.add_subparsers(dest='command', required=True)
  for command in COMMANDS:
    command.add_parser(subparsers)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the `maskformer-tfx` console script."""
  args = build_parser().parse_args(argv)
  try:
    # Every subcommand uses TensorFlow: import it now, its C++ start-up
    # lines filtered out, before the subcommand prints anything.
    tf_startup.import_tensorflow()
    return args.handler(args)
  except Exception as error:
    print(f'maskformer-tfx {args.command} failed: '
          f'{errors.one_paragraph(error)}', file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
