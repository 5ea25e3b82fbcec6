"""Tests for the shared argparse types."""

import argparse

import pytest

from runners.commands import arg_types


def test_positive_int_accepts_counts_and_refuses_the_rest():
  assert arg_types.positive_int('3') == 3
  for text, message in (('0', 'at least 1, got 0'), ('-2', 'at least 1, got -2'),
                        ('x', "an integer, got 'x'")):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
      arg_types.positive_int(text)
