"""DriftValidator and DriftGate: the drift check before the Trainer.

`DriftValidator` compares this span's panoptic statistics (PanopticStatisticsGen,
train split) with the statistics the last blessed model was trained on, which
the Trainer stores inside the exported model (`baseline_statistics_path`), so
that the baseline is whatever the pipeline's latest-blessed-model resolver
returns, locally and on Vertex. It always succeeds and writes `drift.json`;
`DriftGate` then fails the run when the data drifted and drift is not allowed
(`--allow-drift`), with drift.json's message as the error.
"""

import json
import os
from typing import Dict, Optional

import tensorflow as tf
from tfx import v1 as tfx
from tfx.types import artifact

from tfx_pipeline.drift import comparison
from tfx_pipeline.drift import statistics_gen

DRIFT_FILE = 'drift.json'
# Inside a Trainer's model artifact: the statistics its data had.
BASELINE_DIR = os.path.join('Format-Serving', 'assets.extra',
                            'panoptic_statistics')


class DriftReport(artifact.Artifact):
  """The DriftValidator's result: one directory holding drift.json."""
  TYPE_NAME = 'tfx_pipeline.DriftReport'


class DataDriftError(RuntimeError):
  """The data drifted; the message names each drifted feature."""


def baseline_statistics_path(model_uri: str) -> str:
  """The train split's statistics stored in a Trainer's model artifact."""
  return statistics_gen.statistics_path(os.path.join(model_uri, BASELINE_DIR))


def drift_report(statistics_uri: str, schema_file: str,
                 baseline_model_uri: Optional[str], span: Optional[int],
                 allow_drift: bool) -> Dict:
  """drift.json's content (docs/data.md, "Drift")."""
  import tensorflow_data_validation as tfdv
  statistics_file = statistics_gen.statistics_path(statistics_uri)
  report = {'baseline_model': baseline_model_uri,
            'baseline_statistics': None, 'statistics': statistics_file,
            'span': span, 'allow_drift': bool(allow_drift), 'drifted': False,
            'features': [], 'message': ''}
  if baseline_model_uri is None:
    return report
  baseline_file = baseline_statistics_path(baseline_model_uri)
  if not tf.io.gfile.exists(baseline_file):
    # A model trained without the statistics gives no baseline.
    return report
  report['baseline_statistics'] = baseline_file
  features = comparison.compare(tfdv.load_stats_binary(statistics_file),
                                tfdv.load_stats_binary(baseline_file),
                                tfdv.load_schema_text(schema_file))
  report['features'] = features
  report['drifted'] = any(entry['drifted'] for entry in features)
  report['message'] = comparison.drift_message(baseline_model_uri, features)
  return report


def write_json(directory: str, value: Dict) -> str:
  """Writes `value` as `directory`/drift.json (complete or absent)."""
  path = os.path.join(directory, DRIFT_FILE)
  tf.io.gfile.makedirs(directory)
  partial = path + '.partial'
  with tf.io.gfile.GFile(partial, 'w') as f:
    f.write(json.dumps(value, indent=1, sort_keys=True))
  tf.io.gfile.rename(partial, path, overwrite=True)
  return path


def read_json(drift_uri: str) -> Dict:
  with tf.io.gfile.GFile(os.path.join(drift_uri, DRIFT_FILE)) as f:
    return json.load(f)


@tfx.dsl.components.component
def DriftValidator(
    statistics: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics],
    schema: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Schema],
    drift: tfx.dsl.components.OutputArtifact[DriftReport],
    baseline_model: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Model] = None,
    allow_drift: tfx.dsl.components.Parameter[int] = 0) -> None:
  """Writes drift.json: this span's statistics against the baseline model's
  (none on the first run: nothing to compare, not drifted)."""
  write_json(drift.uri, drift_report(
      statistics.uri, os.path.join(schema.uri, 'schema.pbtxt'),
      baseline_model.uri if baseline_model is not None else None,
      statistics_gen.span_of(statistics), bool(allow_drift)))


@tfx.dsl.components.component
def DriftGate(drift: tfx.dsl.components.InputArtifact[DriftReport]) -> None:
  """Fails the run when the data drifted and drift is not allowed."""
  check(read_json(drift.uri))


def check(report: Dict) -> None:
  """Raises DataDriftError (drift.json's message) when `report` drifted and
  drift is not allowed."""
  if report['drifted'] and not report['allow_drift']:
    raise DataDriftError(
        report['message'] + ' (nothing was trained; --allow-drift trains '
        'anyway).')
