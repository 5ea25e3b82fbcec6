"""Where a Trainer execution keeps its checkpoints, and when it resumes.

TFX gives every Trainer execution a new `model_run_dir`, so a rerun after an
interruption would start from step 0 if checkpoints lived there. With
`custom_config['checkpoint_dir']` set, the TFMG model directory (checkpoints)
is `checkpoint_dir/<experiment>-<run key>` instead, and the run key names
what determines the training's result:

* the training config (task, optimizer, `train_steps`; input paths and the
  transform graph location, which are new per TFX execution, left out), and
* a fingerprint of the inputs: the content of the examples the Trainer
  reads and of the transform graph, and the warm-start checkpoint (part of
  the config as `task.init_checkpoint`).

The examples are fingerprinted by what they hold, not by the bytes of their
files: Transform writes its examples again in every execution, the same
records in the same files, but the byte order of each record's feature map
differs from one execution to the next. Each record is parsed and
serialized deterministically (map keys sorted) and the record digests are
summed, so neither that byte order nor the order of the records or their
split into files changes the key. This reads every example once per Trainer
start. The transform graph's files are byte-identical across executions of
the same preprocessing on the same data and are fingerprinted whole.

A rerun of an interrupted training on the same inputs therefore finds its
checkpoints and continues; new data, a new transform, another config or
another base model train from step 0 in a new directory. Once a training is
exported its directory is deleted (`finish_run`), and of the unfinished
ones (interrupted, never resumed) only the `MAX_UNFINISHED_RUNS` newest are
kept, so checkpoint directories do not pile up.
"""

import copy
import hashlib
import json
import logging as std_logging
import os
from typing import Any, Iterable, List, Optional, Sequence

from absl import logging
import tensorflow as tf

from official.core import config_definitions as cfg
from trainer_module import progress
from trainer_module.configs import experiment_names

# Unfinished training runs (interrupted, never resumed) kept per checkpoint dir.
MAX_UNFINISHED_RUNS = 2
DEFAULT_COMPRESSION_TYPE = 'GZIP'
_DIGEST_MODULUS = 1 << 256


def _files_under(directory: str) -> List[str]:
  return sorted(os.path.join(root, name)
                for root, _, names in tf.io.gfile.walk(directory)
                for name in names)


def record_digest(record: bytes) -> int:
  """Digest of a serialized tf.Example that does not depend on the byte
  order of its feature map."""
  example = tf.train.Example.FromString(record)
  return int.from_bytes(hashlib.sha256(
      example.SerializeToString(deterministic=True)).digest(), 'big')


def examples_fingerprint(patterns: Sequence[str],
                         compression_type: str = DEFAULT_COMPRESSION_TYPE
                         ) -> List[Any]:
  """[record count, content digest] of the examples in the files matching
  `patterns`, independent of the records' order and their files."""
  # As the Trainer reads them: a file matched by two patterns counts twice.
  files = [path for pattern in patterns
           for path in sorted(tf.io.gfile.glob(pattern))]
  count, total = 0, 0
  if files:
    for record in tf.data.TFRecordDataset(
        files, compression_type=compression_type).as_numpy_iterator():
      count += 1
      total = (total + record_digest(record)) % _DIGEST_MODULUS
  return [count, f'{total:064x}']


def transform_graph_fingerprint(transform_output_dir: Optional[str]) -> str:
  """Digest of every file of the transform output (graph and metadata)."""
  if not transform_output_dir:
    return ''
  digest = hashlib.sha256()
  for path in _files_under(transform_output_dir):
    digest.update(os.path.relpath(path, transform_output_dir).encode())
    with tf.io.gfile.GFile(path, 'rb') as f:
      digest.update(f.read())
  return digest.hexdigest()


def inputs_fingerprint(train_files: Sequence[str], eval_files: Sequence[str],
                       transform_output_dir: Optional[str],
                       compression_type: str = DEFAULT_COMPRESSION_TYPE
                       ) -> str:
  """One digest of the Trainer's examples and transform graph."""
  inputs = {'train': examples_fingerprint(train_files, compression_type),
            'eval': examples_fingerprint(eval_files, compression_type),
            'transform_graph': transform_graph_fingerprint(
                transform_output_dir)}
  return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def run_key(params: cfg.ExperimentConfig, inputs: str = '') -> str:
  """Names a training run by its config and its `inputs` fingerprint."""
  config = copy.deepcopy(params.as_dict())
  for data in ('train_data', 'validation_data'):
    config['task'][data].pop('input_path', None)
    config['task'][data].pop('transform_graph_dir', None)
  relevant = {'task': config['task'],
              'optimizer_config': config['trainer']['optimizer_config'],
              'train_steps': config['trainer']['train_steps'],
              'inputs': inputs}
  digest = hashlib.sha256(
      json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()
  return digest[:16]


def checkpoint_dir_of(fn_args: Any, params: cfg.ExperimentConfig) -> str:
  """The TFMG model directory (checkpoints) of a Trainer execution."""
  custom_config = fn_args.custom_config or {}
  base = custom_config.get('checkpoint_dir')
  if not base:
    return fn_args.model_run_dir
  experiment = (custom_config.get('experiment') or
                experiment_names.DEFAULT_EXPERIMENT)
  key = custom_config.get('run_key')
  if not key:
    transform_output_dir = (getattr(fn_args, 'transform_output', None) or
                            getattr(fn_args, 'transform_graph_path', None))
    inputs = inputs_fingerprint(
        fn_args.train_files, fn_args.eval_files, transform_output_dir,
        params.task.train_data.compression_type)
    key = f'{experiment}-{run_key(params, inputs)}'
  return os.path.join(base, key)


def checkpoint_step(checkpoint_path: str) -> int:
  """The global step of a TFMG checkpoint (`.../ckpt-<step>`)."""
  return int(checkpoint_path.rsplit('-', 1)[-1])


def report_resumption(checkpoint_path: str) -> None:
  """Tells the person running the pipeline that training resumes (a
  progress line: on the terminal of `maskformer-tfx run`)."""
  std_logging.getLogger(progress.LOGGER_NAME).info(
      'resuming from step %d (checkpoint %s)',
      checkpoint_step(checkpoint_path), checkpoint_path)


def _last_write(directory: str) -> float:
  times = [tf.io.gfile.stat(path).mtime_nsec for path in
           _files_under(directory)]
  return max(times) if times else 0


def finish_run(fn_args: Any, model_dir: str,
               keep_unfinished: int = MAX_UNFINISHED_RUNS) -> List[str]:
  """Deletes an exported run's checkpoints and all but the newest
  `keep_unfinished` other runs under `checkpoint_dir`. Returns the deleted
  directories. Nothing is deleted without `checkpoint_dir`."""
  base = (fn_args.custom_config or {}).get('checkpoint_dir')
  if not base or os.path.dirname(model_dir.rstrip('/')) != base.rstrip('/'):
    return []
  others: Iterable[str] = (os.path.join(base, name.rstrip('/'))
                           for name in tf.io.gfile.listdir(base))
  others = sorted((path for path in others if path != model_dir
                   and tf.io.gfile.isdir(path)), key=_last_write,
                  reverse=True)
  deleted = [model_dir] + others[keep_unfinished:]
  for path in deleted:
    logging.info('Deleting the checkpoints of training run %s.', path)
    tf.io.gfile.rmtree(path)
  return deleted
