import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from schemas import DRIFT_SCHEMA_FILE, schema_path
from tfx_pipeline.drift import comparison
from tfx_pipeline.drift import testing

PERSON, CAR, DOG, SKY, GRASS = 1, 3, 18, 187, 193
BASELINE = [[SKY, GRASS, PERSON, CAR]] * 10 + [[SKY, GRASS, PERSON]] * 10


@pytest.fixture(scope='module')
def schema():
  return tfdv.load_schema_text(schema_path(DRIFT_SCHEMA_FILE))


def _by_feature(entries):
  return {(entry['feature'], entry['comparator']): entry for entry in entries}


def test_the_same_data_does_not_drift(schema):
  statistics = testing.statistics_of(testing.rows_of_categories(BASELINE))
  entries = comparison.compare(statistics, statistics, schema)
  assert [(e['feature'], e['comparator']) for e in entries] == [
      ('segment_category', 'jensen_shannon_divergence'),
      ('segment_isthing', 'infinity_norm'),
      ('segment_area_fraction', 'jensen_shannon_divergence'),
      ('num_segments', 'jensen_shannon_divergence'),
      ('image_height', 'jensen_shannon_divergence'),
      ('image_width', 'jensen_shannon_divergence'),
      ('num_examples', 'num_examples')]
  assert not any(entry['drifted'] for entry in entries)
  assert _by_feature(entries)['segment_category',
                              'jensen_shannon_divergence']['distance'] == 0
  assert comparison.drift_message('m', entries) == ''


def test_a_swapped_category_drifts_by_its_jensen_shannon_divergence(schema):
  baseline = testing.statistics_of(testing.rows_of_categories(BASELINE))
  swapped = [[DOG if c == PERSON else c for c in image] for image in BASELINE]
  current = testing.statistics_of(testing.rows_of_categories(swapped))
  entries = comparison.compare(current, baseline, schema)
  category = _by_feature(entries)['segment_category',
                                  'jensen_shannon_divergence']
  # Person (20 of 70 segments) becomes dog: JSD (base 2) = 20/70 = 0.2857.
  assert category['distance'] == pytest.approx(20 / 70, abs=1e-6)
  assert category['threshold'] == pytest.approx(0.05)
  assert category['drifted']
  assert [e['feature'] for e in entries if e['drifted']] == ['segment_category']
  assert comparison.drift_message('gs://b/model/7', entries) == (
      'Data drift against the data of blessed model gs://b/model/7: '
      "'segment_category' Jensen-Shannon 0.286 > 0.050")


def test_thresholds_come_from_the_schema(schema):
  baseline = testing.statistics_of(testing.rows_of_categories(BASELINE))
  # Cars in 13 images instead of 10: below the default, above a tighter
  # limit.
  more_cars = [[SKY, GRASS, PERSON, CAR]] * 13 + [[SKY, GRASS, PERSON]] * 7
  current = testing.statistics_of(testing.rows_of_categories(more_cars))
  default = _by_feature(comparison.compare(current, baseline, schema))
  assert 0.001 < default['segment_category', 'jensen_shannon_divergence'][
      'distance'] < 0.05
  tight = schema_pb2.Schema()
  tight.CopyFrom(schema)
  tight.feature[0].drift_comparator.jensen_shannon_divergence.threshold = 0.001
  entry = _by_feature(comparison.compare(current, baseline, tight))[
      'segment_category', 'jensen_shannon_divergence']
  assert entry['drifted'] and entry['threshold'] == pytest.approx(0.001)


def test_the_number_of_examples_is_compared_with_its_fraction_bounds():
  schema = text_format.Parse(
      'dataset_constraints { num_examples_drift_comparator { '
      'min_fraction_threshold: 0.5 max_fraction_threshold: 2.0 } }',
      schema_pb2.Schema())
  baseline = testing.statistics_of(testing.rows_of_categories(BASELINE))
  few = testing.statistics_of(testing.rows_of_categories(BASELINE[:5]))
  entry, = comparison.compare(few, baseline, schema)
  assert entry == {'feature': 'num_examples', 'comparator': 'num_examples',
                   'distance': 0.25, 'threshold': 0.5, 'drifted': True,
                   'bound': 'min', 'num_examples': 5,
                   'baseline_num_examples': 20}
  assert comparison.drift_message('m', [entry]) == (
      'Data drift against the data of blessed model m: number of examples 5 '
      "is 0.25 × the baseline's 20, < 0.50")
  entry, = comparison.compare(baseline, few, schema)
  assert (entry['distance'], entry['bound'], entry['drifted']) == (
      4.0, 'max', True)
