"""Argument types shared by the `maskformer-tfx` subcommands' parsers."""

import argparse


def positive_int(text: str) -> int:
  """An argparse `type=` for counts and sizes: an int of at least 1."""
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f'must be an integer, got {text!r}') from None
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
  return value
