"""Helpers for tests that run the pipeline through the `maskformer-tfx` CLI."""

import os
import pathlib
import subprocess
import sys
from typing import List, Sequence

import tensorflow as tf

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The shared trained pipeline run (root conftest.py `trained_run`): enough
# steps for the tiny experiment to learn the synthetic sample a little.
E2E_TRAIN_STEPS = 150
E2E_PQ_LOWER_BOUND = 0.05
CLI = pathlib.Path(sys.executable).parent / 'maskformer-tfx'


def run_cli(args: Sequence[str], timeout: int = 900) -> subprocess.CompletedProcess:
  """Runs the installed console script as a user would."""
  command = [str(CLI)] if CLI.exists() else [sys.executable, '-m', 'tfx_pipeline.cli']
  return subprocess.run(command + list(args), capture_output=True, text=True,
                        cwd=REPO_ROOT, timeout=timeout, env=dict(os.environ),
                        check=False)


def read_examples(pattern: str) -> List[tf.train.Example]:
  """Every tf.Example in the TFRecord files matching `pattern`."""
  files = sorted(tf.io.gfile.glob(pattern))
  return [tf.train.Example.FromString(record.numpy())
          for record in tf.data.TFRecordDataset(files)]


def write_examples(path: pathlib.Path, examples: Sequence[tf.train.Example]) -> None:
  """Writes tf.Examples to one TFRecord file."""
  path.parent.mkdir(parents=True, exist_ok=True)
  with tf.io.TFRecordWriter(str(path)) as writer:
    for example in examples:
      writer.write(example.SerializeToString())


def _copy(example: tf.train.Example) -> tf.train.Example:
  copy = tf.train.Example()
  copy.CopyFrom(example)
  return copy


def with_float_height(example: tf.train.Example) -> tf.train.Example:
  """A copy whose image/height is a FLOAT feature (wrong type)."""
  bad = _copy(example)
  height = bad.features.feature['image/height']
  value = height.int64_list.value[0]
  height.Clear()
  height.float_list.value.append(float(value))
  return bad


def without_category_mask(example: tf.train.Example) -> tf.train.Example:
  """A copy without image/panoptic/category_mask."""
  bad = _copy(example)
  del bad.features.feature['image/panoptic/category_mask']
  return bad


def with_empty_image(example: tf.train.Example) -> tf.train.Example:
  """A copy whose image/encoded is empty."""
  bad = _copy(example)
  bad.features.feature['image/encoded'].bytes_list.value[0] = b''
  return bad
