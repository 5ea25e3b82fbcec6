"""Where a Trainer execution keeps its checkpoints, and when it resumes.

TFX gives every Trainer execution a new `model_run_dir`, so a rerun after an
interruption would start from step 0 if checkpoints lived there. With
`custom_config['checkpoint_dir']` set, the TFMG model directory (checkpoints)
is `checkpoint_dir/<experiment>-<run key>` instead, and the run key names
what determines the training's result:

* the training config (task, optimizer, `train_steps`; input paths and the
  transform graph location, which are new per TFX execution, left out), and
* a fingerprint of the inputs: the example files the Trainer reads (each
  file's name, size and its first and last `SAMPLED_BYTES` bytes: a few MB
  read even at COCO scale, yet different for any different data) and the
  full content of the transform graph (small), and the warm-start checkpoint
  (part of the config as `task.init_checkpoint`).

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
import os
from typing import Any, Iterable, List, Optional, Sequence

from absl import logging
import tensorflow as tf

from official.core import config_definitions as cfg
from trainer_module.configs import experiment_names

# Bytes read from the start and from the end of each example file.
SAMPLED_BYTES = 1 << 20
# Unfinished training runs (interrupted, never resumed) kept per checkpoint dir.
MAX_UNFINISHED_RUNS = 2


def _file_digest(path: str, size: int) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, 'rb') as f:
    digest.update(f.read(SAMPLED_BYTES))
    if size > 2 * SAMPLED_BYTES:
      f.seek(size - SAMPLED_BYTES)
    digest.update(f.read(SAMPLED_BYTES))
  return digest.hexdigest()


def _files_under(directory: str) -> List[str]:
  return sorted(os.path.join(root, name)
                for root, _, names in tf.io.gfile.walk(directory)
                for name in names)


def examples_fingerprint(patterns: Sequence[str]) -> List[List[Any]]:
  """[file name, size, sampled-bytes digest] of each example file."""
  entries = []
  for pattern in patterns:
    for path in sorted(tf.io.gfile.glob(pattern)):
      size = tf.io.gfile.stat(path).length
      entries.append([os.path.basename(path), size, _file_digest(path, size)])
  return entries


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
                       transform_output_dir: Optional[str]) -> str:
  """One digest of the Trainer's example files and transform graph."""
  inputs = {'train': examples_fingerprint(train_files),
            'eval': examples_fingerprint(eval_files),
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
    inputs = inputs_fingerprint(fn_args.train_files, fn_args.eval_files,
                                transform_output_dir)
    key = f'{experiment}-{run_key(params, inputs)}'
  return os.path.join(base, key)


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
