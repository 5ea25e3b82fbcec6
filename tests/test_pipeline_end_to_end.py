"""The whole pipeline on real components (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner, TFMA): a trained model is blessed and pushed; a degraded
one is rejected, nothing is pushed, and the earlier push stays untouched."""

import json
import pathlib

import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma

from tests.pipeline_helpers import run_cli
from tfx_pipeline import run_summary
from tfx_pipeline import sample_data

# Enough steps for the tiny experiment to learn the synthetic sample's shapes.
TRAIN_STEPS = 150
PQ_LOWER_BOUND = 0.05


@pytest.fixture(scope='module')
def sample_records(tmp_path_factory) -> pathlib.Path:
  root = tmp_path_factory.mktemp('e2e_sample')
  return sample_data.make_sample_tfrecords(root, num_train=32, num_val=8,
                                           image_size=128, seed=5)


@pytest.fixture(scope='module')
def pipeline_root(tmp_path_factory) -> pathlib.Path:
  return tmp_path_factory.mktemp('e2e_pipeline')


def _latest(path: pathlib.Path) -> pathlib.Path:
  return max(path.iterdir(), key=lambda p: int(p.name))


def _pushed_versions(root: pathlib.Path):
  push_dir = root / 'pushed_models'
  return sorted(p.name for p in push_dir.iterdir()) if push_dir.exists() else []


@pytest.fixture(scope='module')
def first_run(sample_records, pipeline_root):
  result = run_cli(['run', '--data', str(sample_records), '--pipeline-root',
                    str(pipeline_root), '--train-steps', str(TRAIN_STEPS),
                    '--pq-lower-bound', str(PQ_LOWER_BOUND)], timeout=1500)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return result


def test_trained_model_is_evaluated_blessed_and_pushed(first_run, pipeline_root):
  stdout = first_run.stdout
  for component in ('ImportExampleGen', 'StatisticsGen', 'ExampleValidator',
                    'DataValidationGate', 'Transform', 'Trainer', 'Evaluator',
                    'Pusher'):
    assert f'{component} finished' in stdout
  evaluation_dir = _latest(pipeline_root / 'Evaluator' / 'evaluation')
  values = run_summary.metric_values_by_model(str(evaluation_dir))
  candidate = values.get('candidate', values.get(''))
  for name in ('pq', 'sq', 'rq', 'pq_things', 'pq_stuff', 'rq_stuff'):
    assert 0.0 <= candidate[name] <= 1.0, name
  assert candidate['pq'] >= PQ_LOWER_BOUND
  assert tfma.load_validation_result(str(evaluation_dir)).validation_ok
  blessing = _latest(pipeline_root / 'Evaluator' / 'blessing')
  assert (blessing / 'BLESSED').exists()
  assert len(_pushed_versions(pipeline_root)) == 1
  assert f"pq {candidate['pq']:.4f}" in stdout
  assert 'Gate: BLESSED' in stdout
  assert 'Pushed model: ' + str(pipeline_root / 'pushed_models') in stdout


def test_degraded_model_is_rejected_and_nothing_is_pushed(first_run, sample_records,
                                                          pipeline_root):
  pushed_before = _pushed_versions(pipeline_root)
  pushed_dir = pipeline_root / 'pushed_models' / pushed_before[0]
  files_before = {p: p.stat().st_mtime for p in pushed_dir.rglob('*')}

  result = run_cli(['run', '--data', str(sample_records), '--pipeline-root',
                    str(pipeline_root), '--train-steps', '1',
                    '--pq-lower-bound', str(PQ_LOWER_BOUND)], timeout=1500)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert 'Gate: NOT BLESSED' in result.stdout
  assert 'fails' in result.stdout and 'pq' in result.stdout
  assert 'Pushed model: none' in result.stdout
  blessing = _latest(pipeline_root / 'Evaluator' / 'blessing')
  assert (blessing / 'NOT_BLESSED').exists()
  assert _pushed_versions(pipeline_root) == pushed_before
  assert {p: p.stat().st_mtime for p in pushed_dir.rglob('*')} == files_before
