"""Data validation: checks beyond the schema, and the gate that stops a bad run.

ExampleValidator records schema anomalies but does not fail;
`DataValidationGate`, right after it, adds the SQL checks the schema cannot
express and fails the run, naming each anomaly and feature, so that nothing
downstream (Transform, Trainer, ...) runs on bad data.
"""

import os
from typing import List, Optional, Tuple

import tensorflow as tf
import tensorflow_data_validation as tfdv
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


def _split_dirs(artifact_uri: str) -> List[Tuple[str, str]]:
  """(split name, directory) of each `Split-<name>` of an artifact."""
  return [(name.rstrip('/').removeprefix('Split-'),
           os.path.join(artifact_uri, name.rstrip('/')))
          for name in sorted(tf.io.gfile.listdir(artifact_uri))
          if name.startswith('Split-')]


def _describe(split: str, anomalies: anomalies_pb2.Anomalies,
              only_reason: Optional[int] = None) -> List[str]:
  """One line per anomalous feature of one split's Anomalies proto."""
  lines = []
  for feature, info in sorted(anomalies.anomaly_info.items()):
    reasons = [reason for reason in info.reason
               if only_reason is None or reason.type == only_reason]
    if reasons:
      lines.append(f"split '{split}': feature '{feature}': " + '; '.join(
          f'{_reason_name(reason.type)}: '
          f'{reason.description or reason.short_description}'
          for reason in reasons))
  if only_reason is None and anomalies.HasField('dataset_anomaly_info'):
    lines.append(f"split '{split}': dataset: " + '; '.join(
        reason.description for reason in anomalies.dataset_anomaly_info.reason))
  return lines


def describe_anomalies(anomalies_uri: str) -> List[str]:
  """One line per anomaly in an ExampleAnomalies artifact directory.

  Each line names the split, the feature, the anomaly types and TFDV's
  description, e.g. "split 'eval': feature 'image/height':
  UNEXPECTED_DATA_TYPE: Expected data of type: INT but got FLOAT".
  """
  lines = []
  for split, directory in _split_dirs(anomalies_uri):
    path = os.path.join(directory, 'SchemaDiff.pb')
    if tf.io.gfile.exists(path):
      with tf.io.gfile.GFile(path, 'rb') as f:
        lines += _describe(split, anomalies_pb2.Anomalies.FromString(f.read()))
  return lines


def custom_validation_problems(statistics_uri: str, schema_uri: str) -> List[str]:
  """Lines for the failed `custom_validation_config` checks of each split."""
  schema = tfdv.load_schema_text(os.path.join(schema_uri, 'schema.pbtxt'))
  lines = []
  for split, directory in _split_dirs(statistics_uri):
    statistics = tfdv.load_stats_binary(os.path.join(directory, 'FeatureStats.pb'))
    anomalies = tfdv.validate_statistics(
        statistics, schema, custom_validation_config=custom_validation_config())
    lines += _describe(split, anomalies,
                       only_reason=anomalies_pb2.AnomalyInfo.CUSTOM_VALIDATION)
  return lines


def _reason_name(reason_type: int) -> str:
  return anomalies_pb2.AnomalyInfo.Type.Name(reason_type)


@tfx.dsl.components.component
def DataValidationGate(
    statistics: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Schema],
    anomalies: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleAnomalies]) -> None:
  """Fails the run when the data of any split has anomalies.

  Reads ExampleValidator's anomalies and runs the SQL checks of
  `custom_validation_config()` itself: ExampleValidator's own
  `custom_validation_config` does not compile for Vertex Pipelines in TFX 1.16.
  """
  problems = (describe_anomalies(anomalies.uri)
              + custom_validation_problems(statistics.uri, schema.uri))
  if problems:
    raise DataValidationError(
        'Data validation failed; nothing downstream ran. Anomalies: '
        + ' | '.join(problems))
