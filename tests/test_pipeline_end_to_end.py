"""The whole pipeline on real components (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner, TFMA): a trained model is blessed and pushed. Later runs
in a pipeline root (new data, a degraded candidate, a cached rerun, warm
start) are in test_continuous_training.py."""

import pathlib
import re

import tensorflow_model_analysis as tfma

from tests.pipeline_helpers import E2E_PQ_LOWER_BOUND, E2E_TRAIN_STEPS
from tests.pipeline_helpers import pushed_versions
from tfx_pipeline import run_summary


def _latest(path: pathlib.Path) -> pathlib.Path:
  return max(path.iterdir(), key=lambda p: int(p.name))


def test_trained_model_is_evaluated_blessed_and_pushed(trained_run):
  pipeline_root, result = trained_run
  stdout = result.stdout
  for component in ('ImportExampleGen', 'StatisticsGen', 'ExampleValidator',
                    'DataValidationGate', 'Transform', 'Trainer', 'Evaluator',
                    'Pusher'):
    assert f'{component} finished' in stdout
  evaluation_dir = _latest(pipeline_root / 'Evaluator' / 'evaluation')
  values = run_summary.metric_values_by_model(str(evaluation_dir))
  candidate = values.get('candidate', values.get(''))
  for name in ('pq', 'sq', 'rq', 'pq_things', 'pq_stuff', 'rq_stuff'):
    assert 0.0 <= candidate[name] <= 1.0, name
  assert candidate['pq'] >= E2E_PQ_LOWER_BOUND
  assert tfma.load_validation_result(str(evaluation_dir)).validation_ok
  blessing = _latest(pipeline_root / 'Evaluator' / 'blessing')
  assert (blessing / 'BLESSED').exists()
  assert len(pushed_versions(pipeline_root)) == 1
  assert f"pq {candidate['pq']:.4f}" in stdout
  assert 'Gate: BLESSED' in stdout
  assert 'Pushed model: ' + str(pipeline_root / 'pushed_models') in stdout


def test_trainer_progress_reaches_the_terminal(trained_run):
  _, result = trained_run
  stdout = result.stdout
  training = stdout[stdout.index('Trainer started'):
                    stdout.index('Trainer finished')]
  steps = [int(step) for step in re.findall(
      r'Trainer: step (\d+)/' + str(E2E_TRAIN_STEPS) +
      r'  loss [\d.]+  [\d.]+ steps/s  ETA \d\d:\d\d', training)]
  assert steps and steps[-1] == E2E_TRAIN_STEPS, training
