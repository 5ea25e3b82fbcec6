"""The end of a run in words: panoptic quality, the gate decision, the push."""

from typing import Dict, List, Optional

import tensorflow_model_analysis as tfma
from ml_metadata import metadata_store
from tfx.types.artifact import Artifact

from tfx_pipeline import pusher

_SUMMARY_METRICS = ('pq', 'sq', 'rq', 'pq_things', 'sq_things', 'rq_things',
                    'pq_stuff', 'sq_stuff', 'rq_stuff')


def _first(outputs: Dict[str, Dict[str, List[Artifact]]], node: str,
           key: str) -> Optional[Artifact]:
  artifacts = outputs.get(node, {}).get(key, [])
  return artifacts[0] if artifacts else None


def metric_values_by_model(evaluation_uri: str) -> Dict[str, Dict[str, float]]:
  """{model name ('' or 'candidate'/'baseline'): {metric: value}} of the
  overall slice of an Evaluator's evaluation artifact."""
  values: Dict[str, Dict[str, float]] = {}
  for metrics in tfma.load_metrics(evaluation_uri):
    if metrics.slice_key.single_slice_keys:
      continue
    for key_and_value in metrics.metric_keys_and_values:
      key = key_and_value.key
      if key.is_diff:
        continue
      value = key_and_value.value
      if value.HasField('double_value'):
        values.setdefault(key.model_name, {})[key.name] = value.double_value.value
  return values


def _custom_properties(store: metadata_store.MetadataStore,
                       artifact: Artifact) -> Dict[str, object]:
  """An artifact's custom properties as published in ML Metadata (the
  executors set `blessed` / `pushed` there, not on the logged objects)."""
  stored = store.get_artifacts_by_uri(artifact.uri)  # One per URI in TFX.
  if not stored:
    return {}
  return {name: getattr(value, value.WhichOneof('value'))
          for name, value in stored[-1].custom_properties.items()}


def describe_span(outputs: Dict[str, Dict[str, List[Artifact]]],
                  store: metadata_store.MetadataStore) -> List[str]:
  """The span of the run's examples as ML Metadata records it on
  ImportExampleGen's Examples artifact; [] without one."""
  examples = _first(outputs, 'ImportExampleGen', 'examples')
  stored = store.get_artifacts_by_uri(examples.uri) if examples else []
  if not stored:
    return []
  # A property of the Examples type; IR-based runners record it as a
  # custom property.
  for properties in (stored[-1].custom_properties, stored[-1].properties):
    if 'span' in properties:
      return [f"Span: {properties['span'].int_value} (ML Metadata, Examples "
              f'artifact {stored[-1].id}: {examples.uri})']
  return []


def describe_evaluation(outputs: Dict[str, Dict[str, List[Artifact]]],
                        store: metadata_store.MetadataStore) -> List[str]:
  """Lines about PQ, the blessing and the push; [] when no Evaluator ran."""
  evaluation_artifact = _first(outputs, 'Evaluator', 'evaluation')
  blessing = _first(outputs, 'Evaluator', 'blessing')
  if evaluation_artifact is None or blessing is None:
    return []
  by_model = metric_values_by_model(evaluation_artifact.uri)
  candidate = by_model.get('candidate', by_model.get('', {}))
  baseline = by_model.get('baseline')
  lines = ['Panoptic quality (eval split): ' + ', '.join(
      f'{name} {candidate[name]:.4f}' for name in _SUMMARY_METRICS
      if name in candidate)]
  blessed = _custom_properties(store, blessing).get('blessed') == 1
  if blessed:
    lines.append('Gate: BLESSED (PQ passed the bound'
                 + (' and did not regress against the last blessed model).'
                    if baseline else '; there was no earlier blessed model).'))
  else:
    lines.append('Gate: NOT BLESSED; the model was rejected:')
    result = tfma.load_validation_result(evaluation_artifact.uri)
    for per_slice in result.metric_validations_per_slice:
      for failure in per_slice.failures:
        lines.append('  ' + _failure_text(failure, candidate, baseline))
  pushed = _first(outputs, 'Pusher', 'pushed_model')
  pushed_properties = _custom_properties(store, pushed) if pushed else {}
  if pushed_properties.get('pushed') == 1:
    lines.append(f"Pushed model: {pushed_properties['pushed_destination']}")
  elif pushed_properties.get(pusher.ALREADY_PUSHED_PROPERTY):
    lines.append('Pushed model: none (this model was already pushed as '
                 f'{pushed_properties[pusher.ALREADY_PUSHED_PROPERTY]}).')
  else:
    lines.append('Pushed model: none (nothing was pushed).')
  return lines


def _failure_text(failure, candidate: Dict[str, float],
                  baseline: Optional[Dict[str, float]]) -> str:
  """Why a metric failed the gate, naming the candidate's (and, for the
  no-regression check, the last blessed model's) value."""
  name = failure.metric_key.name
  value = failure.metric_value.double_value.value
  threshold = failure.metric_threshold
  if not failure.metric_key.is_diff:
    return (f'candidate {name} {value:.4f} is below the lower bound '
            f'{threshold.value_threshold.lower_bound.value:g} '
            '(--pq-lower-bound).')
  tolerance = -threshold.change_threshold.absolute.value
  text = (f'candidate {name} {candidate.get(name, float("nan")):.4f} is '
          f'{-value:.4f} below the last blessed model\'s')
  if baseline and name in baseline:
    text += f' {name} {baseline[name]:.4f}'
  return (text + f', more than the regression tolerance {tolerance:g} '
          '(--pq-regression-tolerance).')
