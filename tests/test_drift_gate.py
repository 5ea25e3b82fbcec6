"""The drift gate on real components (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner): one pipeline root, a sequence of spans.

The root starts as a copy of the shared `trained_run` (its first run had no
baseline: it passed and trained; its blessed model holds the statistics of
its 32 training images). Then, with span patterns:
1. span 1, 32 other images of the same distribution (another seed): no
   drift, trains;
2. span 2, whose masks label every person a dog: stops before the Trainer,
   naming segment_category, its distance and the blessed model;
3. span 2 again with --allow-drift (and the cache): trains, the summary
   flags the drift.
"""

import json
import pathlib
import re
import shutil

import pytest

from tests.pipeline_helpers import latest_execution_artifacts
from tests.pipeline_helpers import metadata_store
from tests.pipeline_helpers import run_cli
from panoptic_data import sample_data
from tfx_pipeline.drift import validator
from trainer_module import testing

PERSON, DOG = sample_data.PERSON, 18
SPAN_FLAGS = ['--train-pattern', 'span-{SPAN}/train-*',
              '--eval-pattern', 'span-{SPAN}/val-*']
TINY_FLAGS = ['--train-steps', '1', '--eval-steps', '1',
              '--output-size', str(testing.OUTPUT_SIZE),
              '--num-segment-slots', str(testing.NUM_SEGMENT_SLOTS),
              '--pq-lower-bound', '0', '--pq-regression-tolerance', '1',
              '--params-override', json.dumps(testing.PARAMS_OVERRIDE)]


def _write_span(data: pathlib.Path, span: int, seed: int, work: pathlib.Path,
                category_swap=None) -> None:
  # As the shared trained_run's records: 32 training images of 128×128.
  records = sample_data.make_sample_tfrecords(
      work / f'sample-{span}', num_train=32, num_val=2, image_size=128,
      seed=seed, category_swap=category_swap)
  shutil.copytree(records, data / f'span-{span}')


def _drift(root: pathlib.Path):
  uri = latest_execution_artifacts(root, 'DriftValidator')['output:drift'][0]
  return validator.read_json(uri)


def _trained_models(root: pathlib.Path):
  return sorted(path.name for path in (root / 'Trainer' / 'model').iterdir())


@pytest.fixture(scope='module')
def runs(trained_run, tmp_path_factory):
  """{step: (CompletedProcess, drift.json, Trainer models after it)}."""
  trained_root, _ = trained_run
  work = tmp_path_factory.mktemp('drift_gate')
  root = work / 'root'
  shutil.copytree(trained_root, root)
  data = work / 'data'
  _write_span(data, 1, seed=11, work=work)
  _write_span(data, 2, seed=12, work=work, category_swap={PERSON: DOG})
  results = {}
  for step, extra in (('same distribution', ['--span', '1']),
                      ('swapped', ['--span', '2']),
                      # As a user would rerun the stopped run: what ran
                      # before the gate is reused from the cache.
                      ('allowed', ['--span', '2', '--allow-drift',
                                   '--enable-cache'])):
    result = run_cli(['run', '--data', str(data), '--pipeline-root',
                      str(root), *SPAN_FLAGS, *TINY_FLAGS, *extra],
                     timeout=1800)
    results[step] = result, _drift(root), _trained_models(root)
  return root, trained_root, results


def test_the_first_run_had_no_baseline(trained_run):
  trained_root, result = trained_run
  assert ('Drift: no baseline (first blessed model not yet trained)'
          in result.stdout)
  drift = _drift(trained_root)
  assert (drift['baseline_model'], drift['drifted'], drift['features']) == (
      None, False, [])
  model = latest_execution_artifacts(trained_root, 'Trainer')[
      'output:model'][0]
  assert pathlib.Path(validator.baseline_statistics_path(model)).is_file()


def test_a_span_of_the_same_distribution_passes_and_trains(runs):
  root, trained_root, results = runs
  result, drift, models = results['same distribution']
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  baseline = drift['baseline_model']
  assert baseline.startswith(str(trained_root / 'Trainer' / 'model'))
  assert f'Drift: none against {baseline}' in result.stdout
  assert drift['span'] == 1 and not drift['drifted']
  assert {entry['feature'] for entry in drift['features']} >= {
      'segment_category', 'num_segments', 'num_examples'}
  assert len(models) == len(_trained_models(trained_root)) + 1
  # Both spans trained on are recorded: the trained run's (0) and span 1.
  spans = sorted(
      artifact.custom_properties['span'].int_value
      for artifact in metadata_store(root).get_artifacts_by_type('Examples')
      if 'span' in artifact.custom_properties)
  assert spans[0] == 0 and 1 in spans


def test_a_swapped_category_stops_before_the_trainer(runs):
  _, _, results = runs
  result, drift, models = results['swapped']
  before = results['same distribution'][2]
  assert result.returncode == 1
  assert models == before  # Nothing trained.
  baseline = drift['baseline_model']
  category, = [entry for entry in drift['features'] if entry['drifted']]
  assert category['feature'] == 'segment_category'
  assert category['distance'] > category['threshold']
  assert drift['span'] == 2 and drift['drifted'] and not drift['allow_drift']
  stopped = re.search(
      r"Data drift against the data of blessed model (\S+): 'segment_category' "
      r'Jensen-Shannon (\d\.\d{3}) > (\d\.\d{3}) \(nothing was trained',
      result.stderr)
  assert stopped, result.stderr
  assert stopped.group(1) == baseline
  assert float(stopped.group(2)) == pytest.approx(category['distance'],
                                                  abs=5e-4)
  assert 'DriftGate' in result.stdout


def test_allow_drift_trains_and_the_summary_flags_it(runs):
  _, _, results = runs
  result, drift, models = results['allowed']
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  assert drift['drifted'] and drift['allow_drift']
  assert len(models) == len(results['swapped'][2]) + 1
  assert f"Drift: ALLOWED (--allow-drift): {drift['message']}" in (
      result.stdout)
  assert "'segment_category' Jensen-Shannon" in drift['message']
