"""Argument types and arguments shared by the `maskformer-tfx` subcommands'
parsers."""

import argparse
import pathlib


def positive_int(text: str) -> int:
  """An argparse `type=` for counts and sizes: an int of at least 1."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'must be an integer, got {text!r}') from None
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
  return value


def add_model_output_arguments(parser: argparse.ArgumentParser) -> None:
  """--output, --batch-size and --overwrite of the commands that run an
  exported model over images and write its results (predict, evaluate-coco)."""
  parser.add_argument('--output', required=True, type=pathlib.Path,
                      help='Output directory (created).')
  parser.add_argument('--batch-size', type=positive_int, default=8,
                      help='Images per model call (default 8).')
  parser.add_argument('--overwrite', action='store_true',
                      help="Clear an earlier call's results in OUTPUT first "
                      '(without it, such an OUTPUT is refused).')
