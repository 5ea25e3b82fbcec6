"""Tests for the shared argparse types."""

import argparse

import pytest

from tfx_pipeline import cli_args


def test_positive_int_accepts_counts_and_refuses_the_rest():
  assert cli_args.positive_int('3') == 3
  for text, message in (('0', 'at least 1, got 0'), ('-2', 'at least 1, got -2'),
                        ('x', "an integer, got 'x'")):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
      cli_args.positive_int(text)
