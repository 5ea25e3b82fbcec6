"""Helpers for tests that run the pipeline through the `maskformer-tfx` CLI."""

import os
import pathlib
import subprocess
import sys
from typing import List, Sequence

import tensorflow as tf

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
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
