"""Tests of the TFX Trainer `run_fn`: TFMG training, summaries, resume, export.

A small synthetic sample (64×64 images) is transformed with tf.Transform on
Beam at S = 64 (conftest.py's `transformed_sample`); `maskformer_tiny` trains
for a few steps on it.
"""

import json
import os
import pathlib
import subprocess
import sys
from typing import Any, Dict, List

import numpy as np
import pytest
import tensorflow as tf
from tfx.components.trainer import fn_args_utils

from official.core import task_factory
from trainer_module import export
from trainer_module import training_checkpoints
from trainer_module.training_checkpoints import checkpoint_dir_of
from trainer_module.run_fn import build_experiment_config
from trainer_module.run_fn import run_fn
from trainer_module.run_fn import WARM_START_SUBDIR
from trainer_module.testing import NUM_SEGMENT_SLOTS
from trainer_module.testing import OUTPUT_SIZE
from trainer_module.testing import PARAMS_OVERRIDE
from trainer_module.testing import kill_at_checkpoint
from trainer_module.testing import make_fn_args

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
KILL_AFTER_STEP = 3
# Steps of the interrupted run (more than it can train before it is killed).
RESUMED_TRAIN_STEPS = 12
STARTUP_TIMEOUT_S = 600


def scalar_steps(event_dir: pathlib.Path) -> Dict[str, List[int]]:
  """{tag: steps} of the scalar summaries written under `event_dir`."""
  steps: Dict[str, List[int]] = {}
  for path in event_dir.glob('events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        steps.setdefault(value.tag, []).append(int(event.step))
  return steps


def checkpoint_step(model_dir: str) -> int:
  """Global step of the latest checkpoint in `model_dir` (0 if none)."""
  path = tf.train.latest_checkpoint(model_dir)
  return int(path.rsplit('-', 1)[-1]) if path else 0


def _run_fn_in_subprocess(fn_args: fn_args_utils.FnArgs,
                          log_path: pathlib.Path) -> subprocess.Popen:
  """Starts `run_fn(fn_args)` in a child process logging to `log_path` (a
  file, not a pipe: an unread pipe fills up and blocks the child)."""
  arguments = {name: getattr(fn_args, name) for name in (
      'train_files', 'eval_files', 'train_steps', 'eval_steps',
      'transform_output', 'model_run_dir', 'serving_model_dir',
      'custom_config')}
  code = ('import json, sys\n'
          'from tfx.components.trainer import fn_args_utils\n'
          'from trainer_module.run_fn import run_fn\n'
          'run_fn(fn_args_utils.FnArgs(**json.loads(sys.argv[1])))\n')
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2')
  with open(log_path, 'wb') as log:
    return subprocess.Popen(
        [sys.executable, '-c', code, json.dumps(arguments)], cwd=REPO_ROOT,
        env=env, stdout=log, stderr=subprocess.STDOUT)


def test_killed_training_resumes_from_its_last_checkpoint(transformed_sample,
                                                          tmp_path):
  checkpoint_root = tmp_path / 'checkpoints'
  first = make_fn_args(transformed_sample, tmp_path / 'execution_1',
                       train_steps=RESUMED_TRAIN_STEPS,
                       checkpoint_dir=str(checkpoint_root))
  model_dir = checkpoint_dir_of(
      first, build_experiment_config(first))
  log_path = tmp_path / 'run_fn_killed.log'
  process = _run_fn_in_subprocess(first, log_path)
  killed_at = kill_at_checkpoint(
      process, lambda: checkpoint_step(model_dir), KILL_AFTER_STEP,
      STARTUP_TIMEOUT_S, log_path.read_text)
  assert KILL_AFTER_STEP <= killed_at < RESUMED_TRAIN_STEPS

  # TFX reruns the Trainer as a new execution with a new model_run_dir.
  second = make_fn_args(transformed_sample, tmp_path / 'execution_2',
                        train_steps=RESUMED_TRAIN_STEPS,
                        checkpoint_dir=str(checkpoint_root))
  assert checkpoint_dir_of(
      second, build_experiment_config(second)) == model_dir
  run_fn(second)

  # The finished run's checkpoints are deleted; its weights stay with the
  # model (for a later warm start).
  assert not tf.io.gfile.exists(model_dir)
  assert tf.train.latest_checkpoint(str(
      tmp_path / 'execution_2' / WARM_START_SUBDIR))
  model_run_dir = pathlib.Path(second.model_run_dir)
  train_steps = scalar_steps(model_run_dir / 'train')
  # Only the remaining steps ran: no restart from step 0.
  assert sorted(train_steps['total_loss']) == list(
      range(killed_at + 1, RESUMED_TRAIN_STEPS + 1))
  for tag in ('loss_ce', 'loss_mask', 'loss_dice', 'loss_ce_0',
              'loss_mask_0', 'loss_dice_0', 'learning_rate'):
    assert tag in train_steps, sorted(train_steps)
  eval_steps = scalar_steps(model_run_dir / 'validation')
  for tag in ('pq', 'pq_things', 'pq_stuff', 'validation_loss'):
    assert eval_steps[tag] == [RESUMED_TRAIN_STEPS], sorted(eval_steps)
  assert (model_run_dir / 'params.yaml').exists()
  loaded = tf.saved_model.load(second.serving_model_dir)
  assert set(loaded.signatures) == {export.SERVING_DEFAULT,
                                    export.SERVING_EXAMPLES,
                                    export.TRANSFORM_LABELS}


@pytest.fixture(scope='module')
def raw_examples_run(transformed_sample,
                     tmp_path_factory) -> fn_args_utils.FnArgs:
  """The FnArgs of a finished 2-step run_fn on raw TFMG records (the
  transform graph applied on the fly), without checkpoint_dir, its model
  exported as a TFX model artifact (`model/Format-Serving`)."""
  work = tmp_path_factory.mktemp('raw_examples_run')
  fn_args = make_fn_args(transformed_sample, work, train_steps=2,
                         materialized=None, compression_type='')
  fn_args.train_files = fn_args.eval_files = [transformed_sample['raw']]
  fn_args.serving_model_dir = str(work / 'model' / 'Format-Serving')
  run_fn(fn_args)
  return fn_args


def test_run_fn_trains_on_raw_examples_through_the_transform_graph(
    raw_examples_run, transformed_sample):
  fn_args = raw_examples_run
  # Without checkpoint_dir the checkpoints live in model_run_dir.
  assert checkpoint_step(fn_args.model_run_dir) == 2
  params = build_experiment_config(fn_args)
  assert params.task.train_data.transform_graph_dir == transformed_sample[
      'graph']
  eval_steps = scalar_steps(pathlib.Path(fn_args.model_run_dir) /
                            'validation')
  assert eval_steps['pq'] == [2]
  assert tf.saved_model.contains_saved_model(fn_args.serving_model_dir)


def test_experiment_config_takes_files_sizes_and_steps_from_fn_args(
    transformed_sample, tmp_path):
  materialized = build_experiment_config(make_fn_args(
      transformed_sample, tmp_path, train_steps=7, materialized=None))
  raw = build_experiment_config(make_fn_args(
      transformed_sample, tmp_path, train_steps=7, materialized=False))

  for params, files, graph_dir in (
      (materialized, transformed_sample['transformed'], ''),
      (raw, transformed_sample['raw'], transformed_sample['graph'])):
    assert params.trainer.train_steps == 7
    assert params.trainer.validation_steps == 1
    assert list(params.task.model.input_size) == [OUTPUT_SIZE, OUTPUT_SIZE, 3]
    for data in (params.task.train_data, params.task.validation_data):
      assert data.input_path == files
      assert data.transform_graph_dir == graph_dir
      assert data.output_size == OUTPUT_SIZE
      assert data.num_segment_slots == NUM_SEGMENT_SLOTS
  assert materialized.task.train_data.compression_type == 'GZIP'
  assert raw.task.train_data.compression_type == ''


def test_sizes_that_contradict_the_transform_graph_are_rejected(
    transformed_sample, tmp_path):
  fn_args = make_fn_args(transformed_sample, tmp_path, train_steps=1,
                         output_size=2 * OUTPUT_SIZE)
  with pytest.raises(ValueError, match='output_size=128 differs'):
    build_experiment_config(fn_args)


def _copy_tree(source: str, target: pathlib.Path) -> pathlib.Path:
  for path in tf.io.gfile.glob(source):
    if tf.io.gfile.isdir(path):
      for root, _, names in tf.io.gfile.walk(path):
        for name in names:
          file = os.path.join(root, name)
          copy = target / os.path.relpath(file, os.path.dirname(path))
          copy.parent.mkdir(parents=True, exist_ok=True)
          tf.io.gfile.copy(file, str(copy))
    else:
      target.mkdir(parents=True, exist_ok=True)
      tf.io.gfile.copy(path, str(target / os.path.basename(path)))
  return target


def test_run_key_is_the_config_and_the_inputs_not_their_paths(
    transformed_sample, tmp_path):

  def checkpoint_dir(fn_args):
    return checkpoint_dir_of(
        fn_args, build_experiment_config(fn_args))

  def args(work, steps=5, **config):
    return make_fn_args(transformed_sample, tmp_path / work,
                        train_steps=steps,
                        checkpoint_dir=str(tmp_path / 'ckpt'), **config)

  base = args('a')
  # A new TFX execution: the same bytes under new artifact URIs.
  other_execution = args('b')
  examples = _copy_tree(transformed_sample['transformed'],
                        tmp_path / 'copy' / 'Split-train')
  other_execution.train_files = other_execution.eval_files = [
      str(examples / '*')]
  other_execution.transform_output = str(_copy_tree(
      transformed_sample['graph'] + '/*', tmp_path / 'graph_copy'))
  # Other data: one example file less in the eval split.
  other_data = args('a')
  other_data.eval_files = [str(_copy_tree(
      sorted(tf.io.gfile.glob(transformed_sample['transformed']))[0],
      tmp_path / 'one' / 'Split-train') / '*')]
  other_data.eval_files.append(other_data.eval_files[0])
  # Other transform graph bytes.
  other_graph = args('a')
  other_graph.transform_output = str(_copy_tree(
      transformed_sample['graph'] + '/*', tmp_path / 'graph_changed'))
  with open(tmp_path / 'graph_changed' / 'extra.txt', 'w') as f:
    f.write('changed')
  other_steps = args('a', steps=9)
  other_model = args('a', params_override=json.dumps(
      dict(PARAMS_OVERRIDE, task=dict(PARAMS_OVERRIDE['task'],
                                      model={'hidden_size': 32}))))
  named = args('a', run_key='mine')

  assert checkpoint_dir(base) == checkpoint_dir(other_execution)
  for other in (other_data, other_graph, other_steps, other_model):
    assert checkpoint_dir(base) != checkpoint_dir(other)
  assert checkpoint_dir(named) == str(tmp_path / 'ckpt' / 'mine')
  assert pathlib.Path(checkpoint_dir(base)).parent == tmp_path / 'ckpt'


def test_finished_runs_are_deleted_and_unfinished_ones_bounded(tmp_path):
  base = tmp_path / 'checkpoints'
  runs = []
  for index in range(5):
    run = base / f'run{index}'
    run.mkdir(parents=True)
    (run / 'ckpt-1.index').write_text('x')
    os.utime(run / 'ckpt-1.index', (1000 + index, 1000 + index))
    runs.append(run)
  fn_args = fn_args_utils.FnArgs(custom_config={'checkpoint_dir': str(base)},
                                 model_run_dir=str(tmp_path / 'model_run'))

  deleted = training_checkpoints.finish_run(fn_args, str(runs[0]),
                                       keep_unfinished=2)

  # The finished run and the oldest unfinished ones go; the 2 newest stay.
  assert sorted(deleted) == [str(runs[index]) for index in (0, 1, 2)]
  assert sorted(p.name for p in base.iterdir()) == ['run3', 'run4']
  # Without checkpoint_dir (checkpoints in model_run_dir) nothing is deleted.
  assert training_checkpoints.finish_run(
      fn_args_utils.FnArgs(custom_config={}), str(runs[3])) == []
  assert runs[3].exists()


@pytest.fixture(scope='module')
def exported_model(raw_examples_run) -> str:
  """The serving model dir of a 2-step run_fn (a TFX model artifact); the
  base model of the warm-start tests, whose examples (transformed ones)
  need not be the base model's."""
  return raw_examples_run.serving_model_dir


def _value_fingerprints(arrays) -> List[Any]:
  return sorted((tuple(a.shape), float(np.sum(a, dtype=np.float64)))
                for a in arrays)


def test_warm_start_initialises_every_weight_from_the_base_model(
    exported_model, transformed_sample, tmp_path):
  warm = make_fn_args(transformed_sample, tmp_path, train_steps=3,
                      checkpoint_dir=str(tmp_path / 'ckpt'), warm_start=True)
  warm.base_model = exported_model
  cold = make_fn_args(transformed_sample, tmp_path, train_steps=3,
                      checkpoint_dir=str(tmp_path / 'ckpt'))
  cold.base_model = exported_model  # Ignored without warm_start.
  params = build_experiment_config(warm)
  assert params.task.init_checkpoint.startswith(os.path.join(
      os.path.dirname(exported_model), WARM_START_SUBDIR))
  assert params.task.init_checkpoint_modules == 'all'
  assert build_experiment_config(cold).task.init_checkpoint == ''
  # Another base model is another training run.
  assert checkpoint_dir_of(warm, params) != checkpoint_dir_of(
      cold, build_experiment_config(cold))

  task = task_factory.get_task(params.task)
  model = task.build_model()
  model(tf.zeros([1, OUTPUT_SIZE, OUTPUT_SIZE, 3]), training=False)
  fresh = _value_fingerprints(v.numpy() for v in model.variables)
  task.initialize(model)
  initialised = _value_fingerprints(v.numpy() for v in model.variables)
  reader = tf.train.load_checkpoint(
      os.path.join(exported_model, 'variables', 'variables'))
  served = _value_fingerprints(
      reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
      if name.endswith('VARIABLE_VALUE'))
  assert initialised == served
  assert fresh != served


def test_warm_start_without_weights_in_the_base_model_is_a_clear_error(
    transformed_sample, tmp_path):
  fn_args = make_fn_args(transformed_sample, tmp_path, train_steps=3,
                         warm_start=True)
  fn_args.base_model = str(tmp_path / 'old_model' / 'Format-Serving')
  with pytest.raises(ValueError, match='has no weights in .*without '
                     '--warm-start'):
    build_experiment_config(fn_args)
  # No blessed model yet: warm start trains from the experiment's init.
  fn_args.base_model = None
  assert build_experiment_config(fn_args).task.init_checkpoint == ''
