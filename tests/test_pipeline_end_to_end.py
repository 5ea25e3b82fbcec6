"""The whole pipeline on real components (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner, TFMA): a trained model is blessed and pushed; a degraded
one is rejected, nothing is pushed, and the earlier push stays untouched."""

import pathlib

import tensorflow_model_analysis as tfma

from tests.pipeline_helpers import E2E_PQ_LOWER_BOUND, run_cli
from tfx_pipeline import run_summary

def _latest(path: pathlib.Path) -> pathlib.Path:
  return max(path.iterdir(), key=lambda p: int(p.name))


def _pushed_versions(root: pathlib.Path):
  push_dir = root / 'pushed_models'
  return sorted(p.name for p in push_dir.iterdir()) if push_dir.exists() else []


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
  assert len(_pushed_versions(pipeline_root)) == 1
  assert f"pq {candidate['pq']:.4f}" in stdout
  assert 'Gate: BLESSED' in stdout
  assert 'Pushed model: ' + str(pipeline_root / 'pushed_models') in stdout


def test_degraded_model_is_rejected_and_nothing_is_pushed(trained_run,
                                                          trained_run_records):
  pipeline_root, _ = trained_run
  pushed_before = _pushed_versions(pipeline_root)
  pushed_dir = pipeline_root / 'pushed_models' / pushed_before[0]
  files_before = {p: p.stat().st_mtime for p in pushed_dir.rglob('*')}

  result = run_cli(['run', '--data', str(trained_run_records),
                    '--pipeline-root', str(pipeline_root), '--train-steps', '1',
                    '--pq-lower-bound', str(E2E_PQ_LOWER_BOUND),
                    # Data components reuse the first run's outputs.
                    '--enable-cache'], timeout=1500)
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert 'Gate: NOT BLESSED' in result.stdout
  assert 'fails' in result.stdout and 'pq' in result.stdout
  assert 'Pushed model: none' in result.stdout
  blessing = _latest(pipeline_root / 'Evaluator' / 'blessing')
  assert (blessing / 'NOT_BLESSED').exists()
  assert _pushed_versions(pipeline_root) == pushed_before
  assert {p: p.stat().st_mtime for p in pushed_dir.rglob('*')} == files_before
