"""The Model quality section: PQ/SQ/RQ for All/Things/Stuff and per class,
the number of eval images, the gate decision with the EvalConfig's
thresholds, the baseline model's values and what the Pusher did."""

import json
from typing import Any, List, Mapping, Optional, Tuple

from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record

_QUALITY_GROUPS = (('All', ''), ('Things', '_things'), ('Stuff', '_stuff'))
_PER_CLASS_PREFIX = 'pq_class_'
_EXAMPLE_COUNT = 'example_count'


def _eval_config(run: run_record.PipelineRun) -> Any:
  """The EvalConfig the evaluation was computed with: TFMA writes it into
  the evaluation artifact; else the Evaluator's exec property."""
  from google.protobuf import json_format
  import tensorflow_model_analysis as tfma
  from tensorflow_model_analysis.writers import eval_config_writer
  evaluation = run.output('Evaluator', 'evaluation')
  try:
    return eval_config_writer.load_eval_run(evaluation.uri)[0]
  except Exception:
    pass  # Older layouts: the execution's property below.
  text = run.node('Evaluator').exec_properties.get('eval_config')
  if not text:
    raise run_record.Unavailable(
        f'no eval_config.json in {evaluation.uri} and no eval_config '
        'property of the Evaluator execution')
  return json_format.Parse(text, tfma.EvalConfig())


def describe_threshold(name: str, threshold: Any) -> List[str]:
  """A TFMA MetricThreshold on metric `name`, in words (one line per bound)."""
  import tensorflow_model_analysis as tfma
  lines = []
  if threshold.HasField('value_threshold'):
    value = threshold.value_threshold
    if value.HasField('lower_bound'):
      lines.append(f'{name} ≥ {value.lower_bound.value:g}')
    if value.HasField('upper_bound'):
      lines.append(f'{name} ≤ {value.upper_bound.value:g}')
  if threshold.HasField('change_threshold'):
    change = threshold.change_threshold
    sign = ('≥' if change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
            else '≤')
    if change.HasField('absolute'):
      lines.append(f'{name} (candidate) − {name} (baseline) {sign} '
                   f'{change.absolute.value:g} (only when there is a '
                   'baseline: the last blessed model)')
    if change.HasField('relative'):
      lines.append(f'{name} (candidate) / {name} (baseline) − 1 {sign} '
                   f'{change.relative.value:g} (only when there is a '
                   'baseline)')
  return lines


def threshold_lines(eval_config: Any) -> List[str]:
  """The gate's thresholds of an EvalConfig, in words.

  Covers both places TFMA takes them from: a MetricsSpec's `thresholds`
  (by metric name) and a MetricConfig's `threshold` (on the metric named by
  its config's "name", else its class name).
  """
  thresholds = []
  for spec in eval_config.metrics_specs:
    for metric in spec.metrics:
      if metric.HasField('threshold'):
        config = json.loads(metric.config) if metric.config else {}
        thresholds.append((config.get('name', metric.class_name),
                           metric.threshold))
    thresholds += sorted(spec.thresholds.items())
  return [line for name, threshold in thresholds
          for line in describe_threshold(name, threshold)]


def _validation_failures(evaluation_uri: str) -> List[str]:
  """The failed threshold checks of an evaluation, in words."""
  import tensorflow_model_analysis as tfma
  result = tfma.load_validation_result(evaluation_uri)
  lines = []
  for per_slice in result.metric_validations_per_slice:
    for failure in per_slice.failures:
      key = failure.metric_key
      what = ('change of ' if key.is_diff else '') + key.name
      lines.append(f'{what} = {failure.metric_value.double_value.value:.6g} '
                   'fails: ' + '; '.join(
                       describe_threshold(key.name, failure.metric_threshold)))
  return lines


def _metric_cell(name: str, value: float) -> str:
  return (f'<span class="metric" data-metric="{h.e(name)}" '
          f'data-value="{value!r}">{h.format(value)}</span>')


# Which PQ the report (and the gate) shows; `evaluate-coco` gives COCO's own.
PQ_DEFINITION = (
    "These are the gate's PQ values (TFMA, eval split): computed at the "
    "Transform's S × S resolution on records converted with "
    "--panoptic_skip_crowd, where crowd regions are void. They are not COCO's "
    "published PQ (original resolution, crowd rules of the COCO panoptic "
    "API); `maskformer-tfx evaluate-coco` computes that one.")


def quality_table(candidate: Mapping[str, float],
                  baseline: Optional[Mapping[str, float]]) -> str:
  """PQ/SQ/RQ × All/Things/Stuff, with the baseline's values and the
  difference under each value when there is a baseline, and which PQ this
  is (`PQ_DEFINITION`)."""
  header = ['Group', 'PQ', 'SQ', 'RQ']
  rows = []
  for group, suffix in _QUALITY_GROUPS:
    row = [group]
    for quantity in ('pq', 'sq', 'rq'):
      name = quantity + suffix
      if name not in candidate:
        row.append('—')
        continue
      cell = _metric_cell(name, candidate[name])
      if baseline is not None and name in baseline:
        difference = candidate[name] - baseline[name]
        cell += (f'<br><span class="muted">baseline '
                 f'{h.format(baseline[name])}, Δ {difference:+.4f}</span>')
      row.append(cell)
    rows.append(row)
  return (h.table(header, rows, raw_html=True, css_class='quality')
          + f'<p class="muted" id="pq-definition">{h.e(PQ_DEFINITION)}</p>')


def per_class_pq(metric_values: Mapping[str, float]
                 ) -> List[Tuple[str, bool, float]]:
  """(category name, is thing, PQ) of the `pq_class_<id>` metrics, highest
  PQ first (ties by name)."""
  from schemas import load_categories
  categories = {int(c['id']): c for c in load_categories()}
  rows = []
  for key, value in metric_values.items():
    if not key.startswith(_PER_CLASS_PREFIX):
      continue
    category = categories.get(int(key[len(_PER_CLASS_PREFIX):]))
    if category is None:
      rows.append((key, False, value))
    else:
      rows.append((category['name'], category['isthing'] == 1, value))
  return sorted(rows, key=lambda row: (-row[2], row[0]))


def _per_class_chart(candidate: Mapping[str, float]) -> str:
  """Per-class PQ, sorted, of the classes with PQ > 0."""
  per_class = per_class_pq(candidate)
  if not per_class:
    raise run_record.Unavailable('the evaluation has no per-class PQ')
  nonzero = [row for row in per_class if row[2] > 0]
  if not nonzero:
    return f'<p>All {len(per_class)} categories have PQ 0.</p>'
  figure = h.new_figure(7.0, 0.9 + 0.22 * len(nonzero))
  axes = figure.add_subplot()
  colours = {True: '#4472c4', False: '#ed7d31'}
  for is_thing, label in ((True, 'thing'), (False, 'stuff')):
    rows = [(index, value) for index, (_, thing, value) in enumerate(nonzero)
            if thing == is_thing]
    if rows:
      axes.barh(*zip(*rows), color=colours[is_thing], label=label)
  axes.set_yticks(range(len(nonzero)), [name for name, _, _ in nonzero],
                  fontsize=8)
  axes.invert_yaxis()
  axes.set_xlim(0, 1.0)
  axes.set_xlabel('PQ')
  axes.legend(fontsize=8, loc='lower right')
  axes.set_title('Per-class PQ (eval split)', fontsize=10)
  left_out = len(per_class) - len(nonzero)
  return (h.figure_html(figure, 'Per-class PQ')
          + f'<p class="muted">{left_out} of the {len(per_class)} categories '
          'have PQ 0 (absent from the eval set or never matched) and are '
          'left out.</p>')


def _quality_html(run: run_record.PipelineRun) -> str:
  from tfx_pipeline import run_summary
  evaluation = run.output('Evaluator', 'evaluation')
  by_model = run_summary.metric_values_by_model(evaluation.uri)
  candidate = by_model.get('candidate', by_model.get(''))
  if not candidate:
    raise run_record.Unavailable(f'no metrics in {evaluation.uri}')
  baseline = by_model.get('baseline')
  count = candidate.get(_EXAMPLE_COUNT)
  count_text = (f'<p>Eval images (ExampleCount): '
                f'<b data-metric="{_EXAMPLE_COUNT}">{int(count)}</b></p>'
                if count is not None else '')
  if baseline is not None:
    baseline_model = run.node('Evaluator').inputs.get('baseline_model', [])
    where = (f' (<code>{h.e(baseline_model[0].uri)}</code>)'
             if baseline_model else '')
    baseline_text = (f'<p>Baseline: the last blessed model{where}; '
                     'its values and the difference are under each value.</p>')
  else:
    baseline_text = '<p>Baseline: none (no earlier blessed model).</p>'
  return (count_text + baseline_text
          + h.table_caption('Panoptic quality of the candidate (eval split)')
          + quality_table(candidate, baseline)
          + _per_class_chart(candidate))



def _gate_html(run: run_record.PipelineRun) -> str:
  blessing = run.output('Evaluator', 'blessing')
  evaluation = run.output('Evaluator', 'evaluation')
  blessed = int(blessing.properties.get('blessed', 0)) == 1
  decision = ('<b class="good" id="gate-decision">BLESSED</b>' if blessed else
              '<b class="bad" id="gate-decision">NOT BLESSED</b>')
  thresholds = ''.join(f'<li>{h.e(line)}</li>'
                       for line in threshold_lines(_eval_config(run)))
  parts = [f'<p>Gate decision: {decision}</p>',
           f'<p>Thresholds (EvalConfig):</p><ul>{thresholds}</ul>']
  if not blessed:
    failures = _validation_failures(evaluation.uri)
    items = ''.join(f'<li>{h.e(line)}</li>' for line in failures)
    parts.append('<p>Failed checks:</p><ul class="anomalies">'
                 f'{items}</ul>' if failures else
                 '<p>TFMA recorded no failed check.</p>')
  from tfx_pipeline import pusher as pusher_lib  # Loads TFX.
  pusher = run.nodes.get('Pusher')
  pushed = (pusher.outputs.get('pushed_model', []) if pusher is not None
            and pusher.succeeded else [])
  if pushed and int(pushed[0].properties.get('pushed', 0)) == 1:
    # A directory, or on Vertex the Model Registry version (and endpoint).
    destination = pushed[0].properties.get('pushed_destination', pushed[0].uri)
    endpoint = pushed[0].properties.get(pusher_lib.ENDPOINT_PROPERTY)
    deployed = (f', deployed to endpoint <code>{h.e(endpoint)}</code>'
                if endpoint else '')
    parts.append(f'<p>Pushed to <code>{h.e(destination)}</code>{deployed}.'
                 '</p>')
  elif pushed and pushed[0].properties.get(
      pusher_lib.ALREADY_PUSHED_PROPERTY):
    previous = pushed[0].properties[pusher_lib.ALREADY_PUSHED_PROPERTY]
    parts.append('<p>Pusher: nothing pushed, this model was already pushed '
                 f'as <code>{h.e(previous)}</code>.</p>')
  elif pusher is not None and pusher.succeeded:
    parts.append('<p>Pusher: nothing pushed.</p>')
  else:
    parts.append(f'<p>Pusher: {h.e(run.why_missing("Pusher"))}.</p>')
  return ''.join(parts)


def quality_section(run: run_record.PipelineRun) -> str:
  return '\n'.join([
      h.subsection('Panoptic quality', lambda: _quality_html(run)),
      h.subsection('Gate decision', lambda: _gate_html(run)),
  ])

