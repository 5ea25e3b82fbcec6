"""Continuous training on real components (LocalDagRunner, SQLite ML
Metadata, Beam DirectRunner, TFMA): one pipeline root, a sequence of runs.

The root starts as a copy of the shared `trained_run` (a model blessed and
pushed; ML Metadata still points at that run's artifacts, which are only
read), then:
1. a degraded candidate (1 training step) above the absolute bound but far
   below the blessed model is NOT BLESSED, with both PQs named, and nothing
   is pushed;
2. the same candidate with a tolerance of 1 is blessed (a weak baseline);
3. new data (another sample) with the trained run's exact config trains all
   its steps from step 0, gives other weights, beats the weak baseline, is
   blessed under the default tolerance and pushed as a new version;
4. rerunning 3 with --enable-cache trains nothing and pushes nothing;
5. --warm-start trains from the last blessed model (its base_model in ML
   Metadata) and pushes a new version.
"""

import pathlib
import re
import shutil
from typing import Dict

import numpy as np
import pytest
import tensorflow as tf

from tests.pipeline_helpers import E2E_TRAIN_STEPS
from tests.pipeline_helpers import latest_execution_artifacts
from tests.pipeline_helpers import pushed_versions
from tests.pipeline_helpers import run_cli
from tfx_pipeline import config as pipeline_config
from tfx_pipeline import run_summary

WARM_START_STEPS = 10


def _summary_interval() -> int:
  trainer = pipeline_config.experiment_params(
      pipeline_config.DEFAULT_EXPERIMENT).trainer
  assert trainer.steps_per_loop == trainer.summary_interval
  return trainer.summary_interval


def _run(root: pathlib.Path, data: pathlib.Path, *flags: str):
  result = run_cli(['run', '--data', str(data), '--pipeline-root', str(root),
                    *flags], timeout=1800)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result


def _evaluation(root: pathlib.Path) -> Dict[str, Dict[str, float]]:
  uri = latest_execution_artifacts(root, 'Evaluator')['output:evaluation'][0]
  return run_summary.metric_values_by_model(uri)


def _weights(model_uri: str) -> Dict[str, np.ndarray]:
  reader = tf.train.load_checkpoint(
      f'{model_uri}/Format-Serving/variables/variables')
  return {name: reader.get_tensor(name)
          for name in reader.get_variable_to_shape_map()
          if name.endswith('VARIABLE_VALUE')}


def _distance(a: Dict[str, np.ndarray], b: Dict[str, np.ndarray]) -> float:
  """Relative L2 distance of two models' weights (same architecture)."""
  assert a.keys() == b.keys()
  diff = sum(float(np.sum((a[k] - b[k]) ** 2)) for k in a)
  norm = sum(float(np.sum(b[k] ** 2)) for k in b)
  return (diff / norm) ** 0.5


def _train_summary_steps(model_run_uri: str):
  steps = set()
  for path in tf.io.gfile.glob(f'{model_run_uri}/train/events.out.tfevents.*'):
    for event in tf.compat.v1.train.summary_iterator(path):
      if any(value.tag == 'total_loss' for value in event.summary.value):
        steps.add(int(event.step))
  return sorted(steps)


@pytest.fixture(scope='module')
def root(trained_run, tmp_path_factory) -> pathlib.Path:
  trained_root, _ = trained_run
  copy = tmp_path_factory.mktemp('continuous') / 'pipeline'
  shutil.copytree(trained_root, copy)
  return copy


@pytest.fixture(scope='module')
def first_model(root) -> str:
  return latest_execution_artifacts(root, 'Trainer')['output:model'][0]


@pytest.fixture(scope='module')
def new_data(tmp_path_factory) -> pathlib.Path:
  """Another synthetic sample (other seed): new data."""
  from panoptic_data import sample_data
  return sample_data.make_sample_tfrecords(
      tmp_path_factory.mktemp('new_data'), num_train=16, num_val=8,
      image_size=128, seed=6)


DEGRADED = ('--train-steps', '1', '--pq-lower-bound', '0', '--enable-cache')


@pytest.fixture(scope='module')
def degraded_run(root, first_model, trained_run_records):
  pushed_before = pushed_versions(root)
  result = _run(root, trained_run_records, *DEGRADED)
  return result, pushed_before, _evaluation(root)


def test_degraded_candidate_is_not_blessed_and_nothing_is_pushed(
    root, degraded_run):
  result, pushed_before, values = degraded_run
  candidate, baseline = values['candidate']['pq'], values['baseline']['pq']
  tolerance = pipeline_config.DEFAULT_PQ_REGRESSION_TOLERANCE
  # Above the absolute bound (0), below the blessed model by more than the
  # default tolerance.
  assert 0.0 <= candidate < baseline - tolerance
  assert 'Gate: NOT BLESSED' in result.stdout
  assert (f"candidate pq {candidate:.4f} is {baseline - candidate:.4f} below "
          f"the last blessed model's pq {baseline:.4f}, more than the "
          f'regression tolerance {tolerance:g}') in result.stdout
  assert 'lower bound' not in result.stdout
  assert 'Pushed model: none (nothing was pushed).' in result.stdout
  assert pushed_versions(root) == pushed_before
  assert len(pushed_before) == 1


@pytest.fixture(scope='module')
def weak_baseline_run(root, degraded_run, trained_run_records):
  # Same Trainer inputs and config: the 1-step model is reused (cached) and
  # blessed because any regression is tolerated.
  return _run(root, trained_run_records, *DEGRADED,
              '--pq-regression-tolerance', '1')


def test_a_tolerated_candidate_is_blessed_without_retraining(
    root, weak_baseline_run):
  assert re.search(r'Trainer finished \(\d+ s, cached\)',
                   weak_baseline_run.stdout)
  assert 'Gate: BLESSED' in weak_baseline_run.stdout
  assert len(pushed_versions(root)) == 2


NEW_DATA = ('--train-steps', str(E2E_TRAIN_STEPS), '--pq-lower-bound', '0')


@pytest.fixture(scope='module')
def new_data_run(root, weak_baseline_run, new_data):
  pushed_before = pushed_versions(root)
  # As a user would: the trained run's config on new data, no cache.
  result = _run(root, new_data, *NEW_DATA)
  return result, pushed_before, _evaluation(root)


def test_new_data_trains_a_new_model_from_step_0_and_pushes_it(
    root, new_data_run, first_model):
  result, pushed_before, values = new_data_run
  artifacts = latest_execution_artifacts(root, 'Trainer')
  model = artifacts['output:model'][0]
  assert model != first_model
  # Every summary of a full training from step 0 (a run resumed from the
  # first model's finished checkpoint would train, and summarise, nothing).
  interval = _summary_interval()
  assert _train_summary_steps(artifacts['output:model_run'][0]) == list(
      range(interval, E2E_TRAIN_STEPS + 1, interval))
  assert _distance(_weights(model), _weights(first_model)) > 0.1
  # A better candidate than the (weak) last blessed model: blessed under the
  # default tolerance and pushed as a new version.
  assert values['candidate']['pq'] > values['baseline']['pq']
  assert 'Gate: BLESSED' in result.stdout
  versions = pushed_versions(root)
  assert len(versions) == len(pushed_before) + 1
  assert f'Pushed model: {root / "pushed_models" / versions[-1]}' in (
      result.stdout)
  # Finished trainings leave no checkpoints behind.
  assert not list((root / 'checkpoints').glob('*/ckpt-*.index'))


@pytest.fixture(scope='module')
def cached_rerun(root, new_data_run, new_data):
  pushed_before = pushed_versions(root)
  return _run(root, new_data, *NEW_DATA, '--enable-cache'), pushed_before


def test_unchanged_rerun_with_cache_neither_retrains_nor_pushes_again(
    root, cached_rerun):
  result, pushed_before = cached_rerun
  for component in ('ImportExampleGen', 'Transform', 'Trainer'):
    assert re.search(component + r' finished \(\d+ s, cached\)', result.stdout)
  assert 'Pushed model: none (this model was already pushed as' in (
      result.stdout)
  assert pushed_versions(root) == pushed_before


@pytest.fixture(scope='module')
def warm_start_run(root, cached_rerun, new_data):
  base = latest_execution_artifacts(root, 'Trainer')['output:model'][0]
  pushed_before = pushed_versions(root)
  result = _run(root, new_data, '--warm-start', '--enable-cache',
                '--train-steps', str(WARM_START_STEPS), '--pq-lower-bound',
                '0', '--pq-regression-tolerance', '1')
  return result, base, pushed_before


def test_warm_start_trains_from_the_last_blessed_model(
    root, warm_start_run, first_model):
  result, base, pushed_before = warm_start_run
  artifacts = latest_execution_artifacts(root, 'Trainer')
  model = artifacts['output:model'][0]
  # ML Metadata records the blessed model the Trainer started from.
  assert artifacts['input:base_model'] == [base]
  params = (pathlib.Path(artifacts['output:model_run'][0]) /
            'params.yaml').read_text()
  assert f'{base}/warm_start_checkpoint' in params
  # A few steps from the base model's weights stay close to them.
  warm, base_weights = _weights(model), _weights(base)
  assert 0.0 < _distance(warm, base_weights) < 0.5 * _distance(
      _weights(first_model), base_weights)
  assert 'Gate: BLESSED' in result.stdout
  assert len(pushed_versions(root)) == len(pushed_before) + 1
