"""The data half of the pipeline on real components: good data passes, bad
records stop the run at ExampleValidator with the named anomaly."""

import pathlib
import shutil

import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

from schemas import RAW_SCHEMA_FILE, schema_path
from tests.pipeline_helpers import (read_examples, run_cli, with_empty_image,
                                    with_float_height, without_category_mask,
                                    write_examples)
from tfx_pipeline import data_validation


def _anomalies(examples, tmp_path: pathlib.Path):
  """Validates examples exactly as the pipeline does (schema + custom SQL)."""
  path = tmp_path / 'examples.tfrecord'
  write_examples(path, examples)
  schema = text_format.Parse(
      pathlib.Path(schema_path(RAW_SCHEMA_FILE)).read_text(), schema_pb2.Schema())
  statistics = tfdv.generate_statistics_from_tfrecord(
      str(path), stats_options=tfdv.StatsOptions(schema=schema))
  return tfdv.validate_statistics(
      statistics, schema,
      custom_validation_config=data_validation.custom_validation_config())


def test_real_coco_records_have_no_anomalies(real_coco_records, tmp_path):
  examples = read_examples(str(real_coco_records / 'val-*'))
  assert len(examples) == 2
  assert not _anomalies(examples, tmp_path).anomaly_info


@pytest.mark.parametrize('corrupt, feature, anomaly', [
    (without_category_mask, 'image/panoptic/category_mask',
     'FEATURE_TYPE_LOW_FRACTION_PRESENT'),
    (with_empty_image, 'image/encoded', 'CUSTOM_VALIDATION'),
])
def test_each_bad_record_is_a_named_anomaly(synthetic_sample, tmp_path, corrupt,
                                            feature, anomaly):
  examples = read_examples(str(synthetic_sample / 'tfrecords' / 'train-*'))
  anomalies = _anomalies(examples[1:] + [corrupt(examples[0])], tmp_path)
  assert set(anomalies.anomaly_info) == {feature}
  reasons = {r.type for r in anomalies.anomaly_info[feature].reason}
  assert anomalies_pb2.AnomalyInfo.Type.Value(anomaly) in reasons


def test_wrong_feature_type_is_a_named_anomaly(synthetic_sample, tmp_path):
  examples = read_examples(str(synthetic_sample / 'tfrecords' / 'train-*'))
  anomalies = _anomalies([with_float_height(e) for e in examples], tmp_path)
  assert set(anomalies.anomaly_info) == {'image/height'}
  assert 'Expected data of type: INT but got FLOAT' in (
      anomalies.anomaly_info['image/height'].description)


def test_real_and_synthetic_data_pass_the_data_half(real_coco_records,
                                                    synthetic_sample, tmp_path):
  data = tmp_path / 'data'
  shutil.copytree(synthetic_sample / 'tfrecords', data / 'synthetic')
  shutil.copytree(real_coco_records, data / 'real')
  result = run_cli(['validate', '--data', str(data),
                    '--pipeline-root', str(tmp_path / 'root'),
                    '--train-pattern', 'synthetic/*', '--eval-pattern', 'real/*'])
  assert result.returncode == 0, result.stderr
  for component in ('ImportExampleGen', 'StatisticsGen', 'ImportSchemaGen',
                    'ExampleValidator', 'DataValidationGate'):
    assert f'{component} finished' in result.stdout
  anomalies_dir = next((tmp_path / 'root' / 'ExampleValidator' / 'anomalies').iterdir())
  assert sorted(p.name for p in anomalies_dir.iterdir()) == ['Split-eval', 'Split-train']
  assert data_validation.describe_anomalies(str(anomalies_dir)) == []
  assert 'statistics: ' in result.stdout and 'anomalies: ' in result.stdout
  assert 'Traceback' not in result.stdout + result.stderr


def test_bad_records_stop_the_run_at_example_validator(gate_stopped_run):
  _, result = gate_stopped_run
  assert result.returncode == 1
  assert 'ExampleValidator finished' in result.stdout
  assert 'DataValidationGate finished' not in result.stdout
  assert 'Transform' not in result.stdout
  error = result.stderr
  assert 'Data validation failed' in error
  assert "split 'eval': feature 'image/panoptic/category_mask'" in error
  assert "split 'eval': feature 'image/encoded': CUSTOM_VALIDATION" in error
  assert "feature 'image/height': UNEXPECTED_DATA_TYPE" in error
  assert "split 'train'" not in error
  assert 'Full log: ' in error and 'Traceback' not in error
