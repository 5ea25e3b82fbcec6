import json
import pathlib

import pytest

from schemas import DRIFT_SCHEMA_FILE, schema_path
from tfx_pipeline.drift import statistics_gen
from tfx_pipeline.drift import summary
from tfx_pipeline.drift import testing
from tfx_pipeline.drift import validator

PERSON, DOG, SKY = 1, 18, 187
IMAGES = [[SKY, PERSON]] * 10


def _write_statistics(path, categories_per_image):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(testing.statistics_of(
      testing.rows_of_categories(categories_per_image)).SerializeToString())


@pytest.fixture
def span(tmp_path):
  """A statistics artifact directory of this span (person swapped for dog)."""
  uri = tmp_path / 'statistics'
  _write_statistics(pathlib.Path(statistics_gen.statistics_path(str(uri))),
                    [[SKY, DOG]] * 10)
  return str(uri)


def test_first_run_has_no_baseline_and_passes(span):
  report = validator.drift_report(span, schema_path(DRIFT_SCHEMA_FILE), None,
                                  3, False)
  assert report == {
      'baseline_model': None, 'baseline_statistics': None,
      'statistics': statistics_gen.statistics_path(span), 'span': 3,
      'allow_drift': False, 'drifted': False, 'features': [], 'message': ''}
  validator.check(report)
  assert summary.summary_line(report) == (
      'Drift: no baseline (first blessed model not yet trained)')


def test_a_model_without_statistics_gives_no_baseline(span, tmp_path):
  model = str(tmp_path / 'model')
  report = validator.drift_report(span, schema_path(DRIFT_SCHEMA_FILE), model,
                                  3, False)
  assert (report['baseline_model'], report['baseline_statistics'],
          report['drifted']) == (model, None, False)
  assert 'holds no training statistics' in summary.summary_line(report)


def test_drift_against_the_models_statistics_stops_the_gate(span, tmp_path):
  model = str(tmp_path / 'model')
  baseline = validator.baseline_statistics_path(model)
  assert baseline == (f'{model}/Format-Serving/assets.extra/'
                      'panoptic_statistics/Split-train/FeatureStats.pb')
  _write_statistics(pathlib.Path(baseline), IMAGES)
  report = validator.drift_report(span, schema_path(DRIFT_SCHEMA_FILE), model,
                                  3, False)
  assert report['baseline_statistics'] == baseline
  assert report['drifted']
  drifted = [entry for entry in report['features'] if entry['drifted']]
  assert [entry['feature'] for entry in drifted] == ['segment_category']
  # Half the segments changed category: the divergence (base 2) is 0.5.
  assert drifted[0]['distance'] == pytest.approx(0.5, abs=1e-6)
  message = (f'Data drift against the data of blessed model {model}: '
             "'segment_category' Jensen-Shannon 0.500 > 0.050")
  assert report['message'] == message
  with pytest.raises(validator.DataDriftError) as error:
    validator.check(report)
  assert str(error.value) == (message + ' (nothing was trained; '
                              '--allow-drift trains anyway).')

  path = validator.write_json(str(tmp_path / 'drift'), report)
  assert json.loads(pathlib.Path(path).read_text()) == report
  assert validator.read_json(str(tmp_path / 'drift')) == report

  allowed = dict(report, allow_drift=True)
  validator.check(allowed)
  assert summary.summary_line(allowed) == (
      f'Drift: ALLOWED (--allow-drift): {message}')


def test_the_same_data_passes_against_the_model(span, tmp_path):
  model = str(tmp_path / 'model')
  _write_statistics(pathlib.Path(validator.baseline_statistics_path(model)),
                    [[SKY, DOG]] * 10)
  report = validator.drift_report(span, schema_path(DRIFT_SCHEMA_FILE), model,
                                  None, False)
  assert not report['drifted'] and report['message'] == ''
  assert report['features']
  assert summary.summary_line(report) == f'Drift: none against {model}'
