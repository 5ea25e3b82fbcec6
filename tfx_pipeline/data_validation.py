"""Data validation: checks beyond the schema, and the gate that stops a bad run.

ExampleValidator records anomalies but does not fail; `DataValidationGate`
reads its output and fails the run, naming each anomaly and feature, so that
nothing downstream (Transform, Trainer, ...) runs on bad data.
"""

import os
from typing import List

import tensorflow as tf
from tensorflow_data_validation.anomalies.proto import custom_validation_config_pb2
from tfx import v1 as tfx
from tensorflow_metadata.proto.v0 import anomalies_pb2

# Byte features that must not be empty. Their byte sizes are in the statistics
# because the raw schema marks them image_domain.
NON_EMPTY_BYTES_FEATURES = (
    'image/encoded',
    'image/panoptic/category_mask',
    'image/panoptic/instance_mask',
)


class DataValidationError(RuntimeError):
  """The data has anomalies; the message names each one and its feature."""


def custom_validation_config() -> custom_validation_config_pb2.CustomValidationConfig:
  """SQL checks over the statistics that the schema cannot express."""
  config = custom_validation_config_pb2.CustomValidationConfig()
  for feature in NON_EMPTY_BYTES_FEATURES:
    validation = config.feature_validations.add()
    validation.feature_path.step.append(feature)
    check = validation.validations.add()
    check.sql_expression = 'feature.bytes_stats.min_num_bytes > 0'
    check.severity = anomalies_pb2.AnomalyInfo.ERROR
    check.description = f'at least one example has an empty {feature}'
  return config


def describe_anomalies(anomalies_uri: str) -> List[str]:
  """One line per anomaly in an ExampleAnomalies artifact directory.

  Each line names the split, the feature, the anomaly types and TFDV's
  description, e.g. "split 'eval': feature 'image/encoded':
  CUSTOM_VALIDATION (at least one example has an empty image/encoded)".
  """
  lines = []
  for split_dir in sorted(tf.io.gfile.listdir(anomalies_uri)):
    path = os.path.join(anomalies_uri, split_dir.rstrip('/'), 'SchemaDiff.pb')
    if not tf.io.gfile.exists(path):
      continue
    split = split_dir.rstrip('/').removeprefix('Split-')
    with tf.io.gfile.GFile(path, 'rb') as f:
      anomalies = anomalies_pb2.Anomalies.FromString(f.read())
    for feature, info in sorted(anomalies.anomaly_info.items()):
      reasons = '; '.join(
          f'{_reason_name(reason.type)}: {reason.description or reason.short_description}'
          for reason in info.reason)
      lines.append(f"split '{split}': feature '{feature}': {reasons}")
    if anomalies.HasField('dataset_anomaly_info'):
      reasons = '; '.join(r.description for r in anomalies.dataset_anomaly_info.reason)
      lines.append(f"split '{split}': dataset: {reasons}")
  return lines


def _reason_name(reason_type: int) -> str:
  return anomalies_pb2.AnomalyInfo.Type.Name(reason_type)


@tfx.dsl.components.component
def DataValidationGate(  # pylint: disable=invalid-name
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
  """Fails the run when ExampleValidator found anomalies in any split."""
  problems = describe_anomalies(anomalies.uri)
  if problems:
    raise DataValidationError(
        'Data validation failed; nothing downstream ran. Anomalies: '
        + ' | '.join(problems))
