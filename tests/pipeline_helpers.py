"""Helpers for tests that run the pipeline through the `maskformer-tfx` CLI."""

import os
import pathlib
import subprocess
import sys
from typing import Dict, List, Sequence

import tensorflow as tf

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# The shared trained pipeline run (root conftest.py `trained_run`): enough
# steps for the tiny experiment to learn the synthetic sample a little.
E2E_TRAIN_STEPS = 150
E2E_PQ_LOWER_BOUND = 0.05
CLI = pathlib.Path(sys.executable).parent / 'maskformer-tfx'


def _command(args: Sequence[str]) -> List[str]:
  command = [str(CLI)] if CLI.exists() else [sys.executable, '-m', 'runners.cli']
  return command + list(args)


def run_cli(args: Sequence[str], timeout: int = 900) -> subprocess.CompletedProcess:
  """Runs the installed console script as a user would."""
  return subprocess.run(_command(args), capture_output=True, text=True,
                        cwd=REPO_ROOT, timeout=timeout, env=dict(os.environ),
                        check=False)


def start_cli(args: Sequence[str], output_dir: pathlib.Path) -> subprocess.Popen:
  """Starts the console script in the background, its stdout and stderr
  going to files in `output_dir` (an unread pipe would block it): two
  independent runs side by side share the 2 cores better than one after
  the other (much of a run is single-threaded start-up). See `finish_cli`."""
  output_dir.mkdir(parents=True, exist_ok=True)
  with open(output_dir / 'stdout.txt', 'w') as stdout, open(
      output_dir / 'stderr.txt', 'w') as stderr:
    return subprocess.Popen(_command(args), stdout=stdout, stderr=stderr,
                            cwd=REPO_ROOT, env=dict(os.environ))


def finish_cli(process: subprocess.Popen, output_dir: pathlib.Path,
               timeout: int = 900) -> subprocess.CompletedProcess:
  """Waits for a `start_cli` process (killed after `timeout` s) and returns
  what `run_cli` would have."""
  try:
    process.wait(timeout=timeout)
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
  return subprocess.CompletedProcess(
      process.args, process.returncode,
      stdout=(output_dir / 'stdout.txt').read_text(),
      stderr=(output_dir / 'stderr.txt').read_text())


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


def metadata_store(pipeline_root: pathlib.Path):
  """The ML Metadata store (SQLite) of a local pipeline root."""
  import ml_metadata as mlmd
  from tfx import v1 as tfx
  return mlmd.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(
          str(pipeline_root / 'metadata.sqlite')))


def latest_execution_artifacts(pipeline_root: pathlib.Path, component: str
                               ) -> Dict[str, List[str]]:
  """{'input:KEY' / 'output:KEY': [artifact URIs]} of the latest execution
  of `component` (e.g. 'Trainer') recorded in ML Metadata."""
  from ml_metadata.proto import metadata_store_pb2
  store = metadata_store(pipeline_root)
  executions = [execution for execution in store.get_executions()
                if execution.type.rsplit('.', 1)[-1] == component]
  latest = max(executions, key=lambda execution: execution.id)
  events = store.get_events_by_execution_ids([latest.id])
  uris = {artifact.id: artifact.uri for artifact in store.get_artifacts_by_id(
      [event.artifact_id for event in events])}
  inputs = (metadata_store_pb2.Event.INPUT,
            metadata_store_pb2.Event.DECLARED_INPUT)
  result: Dict[str, List[str]] = {}
  for event in events:
    side = 'input' if event.type in inputs else 'output'
    key = f'{side}:{event.path.steps[0].key}'
    result.setdefault(key, []).append(uris[event.artifact_id])
  return result


def pushed_versions(pipeline_root: pathlib.Path) -> List[str]:
  """The version directories under PIPELINE_ROOT/pushed_models."""
  push_dir = pipeline_root / 'pushed_models'
  return sorted(p.name for p in push_dir.iterdir()) if push_dir.exists() else []
