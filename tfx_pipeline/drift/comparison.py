"""Drift of this span's panoptic statistics against a baseline's, by TFDV.

The limits are TFDV's own: each feature's `drift_comparator` (Jensen-Shannon
divergence or L-infinity distance) and the dataset's
`num_examples_drift_comparator` in the drift schema
(`schemas/panoptic_drift_schema.pbtxt` or the user's). `tfdv.validate_statistics`
with `previous_statistics` measures every compared feature; `compare` turns
its measurements into the entries of drift.json and `drift_message` into the
gate's error.
"""

from typing import Dict, List, Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_metadata.proto.v0 import statistics_pb2

JENSEN_SHANNON = 'jensen_shannon_divergence'
INFINITY_NORM = 'infinity_norm'
NUM_EXAMPLES = 'num_examples'

_COMPARATOR_OF_MEASUREMENT = {
    anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE:
        JENSEN_SHANNON,
    anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: INFINITY_NORM,
}
_WORDS = {JENSEN_SHANNON: 'Jensen-Shannon', INFINITY_NORM: 'L-infinity'}


def _num_examples(statistics: statistics_pb2.DatasetFeatureStatisticsList
                  ) -> int:
  return int(statistics.datasets[0].num_examples) if statistics.datasets else 0


def _num_examples_entry(current: int, baseline: int,
                        comparator) -> Optional[Dict]:
  """The number-of-examples comparison: distance = this span's examples /
  the baseline's, against the bound on its side of 1."""
  bounds = {name: getattr(comparator, f'{name}_fraction_threshold')
            for name in ('min', 'max')
            if comparator.HasField(f'{name}_fraction_threshold')}
  if not bounds or baseline <= 0:
    return None
  ratio = current / baseline
  side = 'min' if ratio < 1 and 'min' in bounds else (
      'max' if 'max' in bounds else 'min')
  threshold = bounds[side]
  drifted = ratio < threshold if side == 'min' else ratio > threshold
  return {'feature': NUM_EXAMPLES, 'comparator': NUM_EXAMPLES,
          'distance': ratio, 'threshold': threshold, 'drifted': drifted,
          'bound': side, 'num_examples': current,
          'baseline_num_examples': baseline}


def compare(statistics: statistics_pb2.DatasetFeatureStatisticsList,
            baseline: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema) -> List[Dict]:
  """One entry per comparison the schema asks for, in schema order:
  {feature, comparator, distance, threshold, drifted}."""
  anomalies = tfdv.validate_statistics(statistics, schema,
                                       previous_statistics=baseline)
  measured = {}
  for info in anomalies.drift_skew_info:
    feature = '.'.join(info.path.step)
    for measurement in info.drift_measurements:
      comparator = _COMPARATOR_OF_MEASUREMENT.get(measurement.type)
      if comparator:
        measured[feature, comparator] = (measurement.value,
                                         measurement.threshold)
  entries = []
  for feature in schema.feature:
    for comparator in (JENSEN_SHANNON, INFINITY_NORM):
      if (feature.name, comparator) in measured:
        distance, threshold = measured[feature.name, comparator]
        entries.append({'feature': feature.name, 'comparator': comparator,
                        'distance': float(distance),
                        'threshold': float(threshold),
                        'drifted': bool(distance > threshold)})
  if schema.dataset_constraints.HasField('num_examples_drift_comparator'):
    entry = _num_examples_entry(
        _num_examples(statistics), _num_examples(baseline),
        schema.dataset_constraints.num_examples_drift_comparator)
    if entry:
      entries.append(entry)
  return entries


def _describe(entry: Dict) -> str:
  if entry['comparator'] == NUM_EXAMPLES:
    relation = '<' if entry['bound'] == 'min' else '>'
    return (f"number of examples {entry['num_examples']} is "
            f"{entry['distance']:.2f} × the baseline's "
            f"{entry['baseline_num_examples']}, {relation} "
            f"{entry['threshold']:.2f}")
  return (f"'{entry['feature']}' {_WORDS[entry['comparator']]} "
          f"{entry['distance']:.3f} > {entry['threshold']:.3f}")


def drift_message(baseline_model: str, entries: List[Dict]) -> str:
  """The gate's error naming each drifted feature; '' when none drifted."""
  drifted = [_describe(entry) for entry in entries if entry['drifted']]
  if not drifted:
    return ''
  return (f'Data drift against the data of blessed model {baseline_model}: '
          + '; '.join(drifted))
