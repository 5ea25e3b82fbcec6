"""Review report: one self-contained HTML page per pipeline run.

`write_report(pipeline_root)` finds a run in the pipeline root's ML Metadata
(`metadata.sqlite`; runs are `pipeline_run` contexts named by run id) and
writes a page with five sections:

* Data: train/eval statistics from StatisticsGen (tables and histograms
  rendered here: TFDV's own Facets view loads its code from a CDN, which a
  page that must open offline cannot), the schema in use and the anomalies
  (ExampleValidator's and the DataValidationGate's custom checks).
* Model quality: PQ/SQ/RQ for All/Things/Stuff and per class, the number of
  eval images, the gate decision with the EvalConfig's thresholds and the
  baseline model's values.
* Training: loss and learning-rate curves from the Trainer's TensorBoard
  event files.
* Examples: eval images with ground-truth and predicted panoptic overlays
  from the Trainer's exported model.
* Provenance: pipeline, run, artifact URIs, experiment and hyperparameters,
  package versions.

Charts are matplotlib PNGs inlined as base64; the page loads nothing from the
network. A section that cannot be shown says "not available: <why>" (e.g. the
run stopped at the data gate, the Evaluator failed).

Importing this module is cheap (TensorFlow, TFX, ML Metadata and matplotlib
load inside the functions), so the CLI can register `report` without slowing
`--help`.
"""

import argparse
import base64
import dataclasses
import datetime
import glob
import html
import importlib.metadata
import io
import json
import logging
import os
import re
import sys
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

METADATA_FILE = 'metadata.sqlite'
REPORTS_DIR = 'reports'
LOGS_DIR = 'logs'
DEFAULT_NUM_EXAMPLES = 6
PIPELINE_RUN_CONTEXT = 'pipeline_run'
PIPELINE_CONTEXT = 'pipeline'
NODE_CONTEXT = 'node'
# The pipeline's nodes in the order tfx_pipeline.pipeline wires them.
PIPELINE_NODES = ('ImportExampleGen', 'ImportSchemaGen', 'StatisticsGen',
                  'ExampleValidator', 'DataValidationGate', 'Transform',
                  'Trainer', 'latest_blessed_model_resolver', 'Evaluator',
                  'Pusher')
SECTIONS = (('data', 'Data'), ('quality', 'Model quality'),
            ('training', 'Training'), ('examples', 'Examples'),
            ('provenance', 'Provenance'))
PACKAGES = ('tfx', 'tensorflow', 'tf-models-official',
            'tensorflow-data-validation', 'tensorflow-model-analysis',
            'tensorflow-transform', 'apache-beam', 'ml-metadata',
            'maskformer-tfx')
_DONE_STATES = ('COMPLETE', 'CACHED')
_QUALITY_GROUPS = (('All', ''), ('Things', '_things'), ('Stuff', '_stuff'))
_PER_CLASS_PREFIX = 'pq_class_'
_EXAMPLE_COUNT = 'example_count'
# Loss terms of the final output; auxiliary decoder layer i adds `_i`.
_LOSS_TERMS = (('loss_ce', 'Class loss (cross-entropy)'),
               ('loss_mask', 'Mask loss (sigmoid focal)'),
               ('loss_dice', 'Mask loss (dice)'))
_TOTAL_LOSS_TAGS = ('total_loss', 'training_loss', 'loss')
_LEARNING_RATE_TAG = 'learning_rate'
_KEY_HYPERPARAMETERS = (
    'task.model', 'task.losses', 'task.train_data.global_batch_size',
    'task.train_data.output_size', 'task.train_data.num_segment_slots',
    'task.validation_data.global_batch_size', 'task.init_checkpoint',
    'trainer.train_steps', 'trainer.validation_steps',
    'trainer.optimizer_config', 'runtime.distribution_strategy',
    'runtime.mixed_precision_dtype')
# Overlay opacity of segment colours (void pixels keep the image).
SEGMENT_OVERLAY_ALPHA = 0.7


class Unavailable(Exception):
  """A part of the page cannot be shown; the message says why."""


class ReportError(RuntimeError):
  """The report cannot be written at all (no metadata, unknown run)."""


@dataclasses.dataclass
class ArtifactRecord:
  """One ML Metadata artifact: its type name, URI and custom properties."""
  id: int
  type_name: str
  uri: str
  properties: Dict[str, Any]


@dataclasses.dataclass
class NodeRun:
  """The execution of one pipeline node in a run."""
  node_id: str
  state: str
  exec_properties: Dict[str, Any]
  inputs: Dict[str, List[ArtifactRecord]]
  outputs: Dict[str, List[ArtifactRecord]]

  @property
  def succeeded(self) -> bool:
    return self.state in _DONE_STATES


@dataclasses.dataclass
class PipelineRun:
  """What ML Metadata knows about one pipeline run."""
  pipeline_root: str
  pipeline_name: str
  run_id: str
  started: datetime.datetime
  nodes: Dict[str, NodeRun]
  error: Optional[str] = None

  def failed_nodes(self) -> List[str]:
    return [node_id for node_id, node in self.nodes.items()
            if node.state == 'FAILED']

  def why_missing(self, node_id: str) -> str:
    """Why `node_id` has no usable outputs in this run."""
    error = f' ({self.error})' if self.error else ''
    node = self.nodes.get(node_id)
    if node is not None and node.state == 'FAILED':
      return f'{node_id} failed{error}'
    if node is not None and not node.succeeded:
      return f'{node_id} has not finished (state {node.state})'
    failed = self.failed_nodes()
    if failed:
      return (f'{node_id} did not run: the run stopped when {failed[0]} '
              'failed (see the top of the page)')
    if node is None:
      return (f'{node_id} is not part of this run (a data-validation-only '
              'run, e.g. `maskformer-tfx validate`, or one still running)')
    return f'{node_id} wrote no such output'

  def node(self, node_id: str) -> NodeRun:
    """The succeeded execution of `node_id`; Unavailable otherwise."""
    node = self.nodes.get(node_id)
    if node is None or not node.succeeded:
      raise Unavailable(self.why_missing(node_id))
    return node

  def output(self, node_id: str, key: str) -> ArtifactRecord:
    """The first `key` output artifact of `node_id`; Unavailable if none."""
    artifacts = self.node(node_id).outputs.get(key)
    if not artifacts:
      raise Unavailable(f'{node_id} wrote no {key!r} artifact')
    return artifacts[0]


# ----------------------------------------------------------------------------
# ML Metadata


def _metadata_store(metadata_path: str) -> Any:
  """A read-only MetadataStore on a SQLite ML Metadata file."""
  # pylint: disable=g-import-not-at-top
  from ml_metadata.metadata_store import metadata_store
  from ml_metadata.proto import metadata_store_pb2
  # pylint: enable=g-import-not-at-top
  if not os.path.isfile(metadata_path):
    raise ReportError(f'No ML Metadata at {metadata_path}: is this a pipeline '
                      'root of `maskformer-tfx run` or `validate`?')
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = metadata_path
  config.sqlite.connection_mode = (
      metadata_store_pb2.SqliteMetadataSourceConfig.READONLY)
  return metadata_store.MetadataStore(config)


def _property_values(properties: Mapping[str, Any]) -> Dict[str, Any]:
  """Python values of an MLMD (custom_)properties map."""
  values = {}
  for name, value in properties.items():
    kind = value.WhichOneof('value')
    if kind == 'proto_value' or kind == 'struct_value':
      values[name] = str(getattr(value, kind))
    elif kind is not None:
      values[name] = getattr(value, kind)
  return values


def list_runs(pipeline_root: str) -> List[Tuple[str, datetime.datetime]]:
  """(run id, start time) of every run in the pipeline root, oldest first."""
  store = _metadata_store(os.path.join(pipeline_root, METADATA_FILE))
  contexts = sorted(store.get_contexts_by_type(PIPELINE_RUN_CONTEXT),
                    key=lambda context: context.create_time_since_epoch)
  return [(context.name, _time(context.create_time_since_epoch))
          for context in contexts]


def _time(milliseconds: int) -> datetime.datetime:
  return datetime.datetime.fromtimestamp(milliseconds / 1000)


def load_run(pipeline_root: str, run_id: Optional[str] = None) -> PipelineRun:
  """Reads a run (default: the latest) from the pipeline root's ML Metadata.

  Raises:
    ReportError: no ML Metadata, no run, or no run `run_id`.
  """
  from ml_metadata.proto import metadata_store_pb2  # pylint: disable=g-import-not-at-top
  event_types = metadata_store_pb2.Event
  store = _metadata_store(os.path.join(pipeline_root, METADATA_FILE))
  runs = store.get_contexts_by_type(PIPELINE_RUN_CONTEXT)
  if not runs:
    raise ReportError(f'{pipeline_root} has no pipeline runs in ML Metadata.')
  if run_id is None:
    context = max(runs, key=lambda run: run.create_time_since_epoch)
  else:
    matching = [run for run in runs if run.name == run_id]
    if not matching:
      known = ', '.join(sorted(run.name for run in runs))
      raise ReportError(f'No run {run_id!r} in {pipeline_root}; runs: {known}.')
    context = matching[0]

  executions = store.get_executions_by_context(context.id)
  events = store.get_events_by_execution_ids([e.id for e in executions])
  artifact_ids = sorted({event.artifact_id for event in events})
  artifacts = {a.id: a for a in store.get_artifacts_by_id(artifact_ids)}
  type_names = {t.id: t.name for t in store.get_artifact_types_by_id(
      sorted({a.type_id for a in artifacts.values()}))}
  records = {
      artifact_id: ArtifactRecord(
          id=artifact_id,
          type_name=type_names.get(artifact.type_id, ''),
          uri=artifact.uri,
          properties={**_property_values(artifact.properties),
                      **_property_values(artifact.custom_properties)})
      for artifact_id, artifact in artifacts.items()
  }

  pipeline_name = ''
  nodes: Dict[str, NodeRun] = {}
  for execution in sorted(executions, key=lambda e: e.create_time_since_epoch):
    node_id = ''
    for execution_context in store.get_contexts_by_execution(execution.id):
      if execution_context.type == PIPELINE_CONTEXT:
        pipeline_name = execution_context.name
      elif execution_context.type == NODE_CONTEXT:
        node_id = execution_context.name
    if pipeline_name and node_id.startswith(pipeline_name + '.'):
      node_id = node_id[len(pipeline_name) + 1:]
    node = NodeRun(
        node_id=node_id,
        state=type(execution).State.Name(execution.last_known_state),
        exec_properties={**_property_values(execution.properties),
                         **_property_values(execution.custom_properties)},
        inputs={}, outputs={})
    for event in events:
      if event.execution_id != execution.id or not event.path.steps:
        continue
      if event.type in (event_types.INPUT, event_types.DECLARED_INPUT):
        side = node.inputs
      elif event.type in (event_types.OUTPUT, event_types.DECLARED_OUTPUT,
                          event_types.PENDING_OUTPUT):
        side = node.outputs
      else:
        continue
      key = event.path.steps[0].key
      side.setdefault(key, []).append(records[event.artifact_id])
    nodes[node_id] = node  # A retried node: its latest execution counts.

  return PipelineRun(pipeline_root=pipeline_root, pipeline_name=pipeline_name,
                     run_id=context.name,
                     started=_time(context.create_time_since_epoch),
                     nodes=nodes,
                     error=run_error_message(pipeline_root, context.name))


def run_error_message(pipeline_root: str, run_id: str,
                      max_chars: int = 600) -> Optional[str]:
  """The exception that ended a run, from the CLI's log of it, if any.

  `maskformer-tfx run/validate` log to PIPELINE_ROOT/logs/run-*.log; the log
  of a run mentions its run id. Returns the last traceback's final line.
  """
  marker = f"pipeline_run_id='{run_id}'"
  for path in sorted(glob.glob(os.path.join(pipeline_root, LOGS_DIR, '*.log')),
                     reverse=True):
    with open(path, encoding='utf-8', errors='replace') as log:
      text = log.read()
    if marker not in text:
      continue
    tracebacks = text.split('Traceback (most recent call last):\n')
    if len(tracebacks) < 2:
      return None
    for line in tracebacks[-1].splitlines():
      if line and not line[0].isspace():
        return line if len(line) <= max_chars else line[:max_chars] + ' ...'
  return None


# ----------------------------------------------------------------------------
# HTML helpers


def _e(value: Any) -> str:
  return html.escape(str(value))


def _table(header: Optional[Sequence[str]], rows: Sequence[Sequence[Any]],
           raw_html: bool = False, css_class: str = '') -> str:
  """An HTML table (no header row if `header` is None); cells are escaped
  unless `raw_html`."""
  cell = (lambda value: str(value)) if raw_html else _e
  head = ('<thead><tr>' + ''.join(f'<th>{_e(name)}</th>' for name in header)
          + '</tr></thead>') if header is not None else ''
  body = ''.join('<tr>' + ''.join(f'<td>{cell(value)}</td>' for value in row)
                 + '</tr>' for row in rows)
  attribute = f' class="{css_class}"' if css_class else ''
  return f'<table{attribute}>{head}<tbody>{body}</tbody></table>'


def _unavailable(why: str) -> str:
  return f'<p class="unavailable">not available: {_e(why)}</p>'


def _subsection(title: str, build: Callable[[], str]) -> str:
  """An <h3> part of a section; failures become "not available: <why>"."""
  try:
    body = build()
  except Unavailable as reason:
    body = _unavailable(str(reason))
  except Exception as error:  # pylint: disable=broad-except
    logging.exception('Report: %s could not be built.', title)
    body = _unavailable(f'reading it failed: {type(error).__name__}: {error}')
  return f'<h3>{_e(title)}</h3>\n{body}'


def _png_data_uri(png: bytes) -> str:
  return 'data:image/png;base64,' + base64.b64encode(png).decode('ascii')


def _figure_html(figure: Any, alt: str) -> str:
  """A matplotlib Figure as an inline PNG <img>."""
  buffer = io.BytesIO()
  figure.savefig(buffer, format='png', dpi=100, bbox_inches='tight')
  return (f'<img class="chart" alt="{_e(alt)}" '
          f'src="{_png_data_uri(buffer.getvalue())}">')


def _new_figure(width: float, height: float) -> Any:
  """A matplotlib Figure that does not touch pyplot's global state."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top
  return Figure(figsize=(width, height), layout='constrained')


def _format(value: float, digits: int = 4) -> str:
  return f'{value:.{digits}f}'


def _number(value: float) -> str:
  """A statistic in few characters."""
  if value == int(value) and abs(value) < 1e9:
    return str(int(value))
  return f'{value:.4g}'


# ----------------------------------------------------------------------------
# Data


def _split_dirs(artifact_uri: str) -> Dict[str, str]:
  """{split name: directory} of an artifact's `Split-<name>` directories."""
  return {name[len('Split-'):]: os.path.join(artifact_uri, name)
          for name in sorted(os.listdir(artifact_uri))
          if name.startswith('Split-')}


def load_statistics(statistics_uri: str) -> Dict[str, Any]:
  """{split: DatasetFeatureStatistics} of a StatisticsGen artifact."""
  # pylint: disable=g-import-not-at-top
  from tensorflow_metadata.proto.v0 import statistics_pb2
  # pylint: enable=g-import-not-at-top
  statistics = {}
  for split, directory in _split_dirs(statistics_uri).items():
    with open(os.path.join(directory, 'FeatureStats.pb'), 'rb') as f:
      statistics_list = statistics_pb2.DatasetFeatureStatisticsList.FromString(
          f.read())
    statistics[split] = statistics_list.datasets[0]
  return statistics


def _ordered_splits(splits: Sequence[str]) -> List[str]:
  order = {'train': 0, 'eval': 1}
  return sorted(splits, key=lambda split: (order.get(split, 2), split))


def _feature_name(feature: Any) -> str:
  return '.'.join(feature.path.step) or feature.name


def _common_stats(feature: Any) -> Any:
  kind = feature.WhichOneof('stats')
  stats = getattr(feature, kind)
  return stats if kind == 'struct_stats' else stats.common_stats


def _shorten(text: str, max_chars: int = 24) -> str:
  return text if len(text) <= max_chars else text[:max_chars - 1] + '…'


def _feature_summary(feature: Any) -> str:
  """One line of the main statistics of a feature."""
  kind = feature.WhichOneof('stats')
  if kind == 'num_stats':
    stats = feature.num_stats
    return (f'mean {_number(stats.mean)}, std {_number(stats.std_dev)}, '
            f'min {_number(stats.min)}, median {_number(stats.median)}, '
            f'max {_number(stats.max)}, zeros {_number(stats.num_zeros)}')
  if kind == 'string_stats':
    stats = feature.string_stats
    top = (f', top {_shorten(stats.top_values[0].value)!r} '
           f'({_number(stats.top_values[0].frequency)}×)'
           if stats.top_values else '')
    return (f'{stats.unique} unique, avg length '
            f'{_number(stats.avg_length)}{top}')
  if kind == 'bytes_stats':
    stats = feature.bytes_stats
    return (f'bytes: min {_number(stats.min_num_bytes)}, avg '
            f'{_number(stats.avg_num_bytes)}, max '
            f'{_number(stats.max_num_bytes)}')
  return kind or ''


def _statistics_table(statistics: Mapping[str, Any]) -> str:
  """Features × splits: presence, values per example and a summary."""
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=g-import-not-at-top
  splits = _ordered_splits(list(statistics))
  by_split = {split: {_feature_name(f): f for f in statistics[split].features}
              for split in splits}
  names = sorted({name for features in by_split.values() for name in features})
  header = ['Feature', 'Type'] + [
      f'{split} ({statistics[split].num_examples} examples)'
      for split in splits]
  rows = []
  for name in names:
    types = {split: statistics_pb2.FeatureNameStatistics.Type.Name(
        by_split[split][name].type) for split in splits
             if name in by_split[split]}
    type_text = (next(iter(types.values())) if len(set(types.values())) == 1
                 else ', '.join(f'{t} ({split})' for split, t in types.items()))
    cells = [f'<code class="feature">{_e(name)}</code>', _e(type_text)]
    for split in splits:
      feature = by_split[split].get(name)
      if feature is None:
        cells.append('<span class="muted">absent</span>')
        continue
      common = _common_stats(feature)
      total = statistics[split].num_examples
      present = common.num_non_missing
      values = (f'{common.min_num_values}' if common.min_num_values ==
                common.max_num_values else
                f'{common.min_num_values}–{common.max_num_values}')
      missing = 100.0 * (total - present) / total if total else 0.0
      cells.append(
          f'present {present}/{total}'
          + (f' <b class="bad">({missing:.0f}% missing)</b>' if missing else '')
          + f'; {values} value(s)<br><span class="muted">'
          + _e(_feature_summary(feature)) + '</span>')
    rows.append(cells)
  return _table(header, rows, raw_html=True, css_class='statistics')


def _histograms_chart(statistics: Mapping[str, Any]) -> str:
  """Histograms of the numeric features, the splits overlaid."""
  from tensorflow_metadata.proto.v0 import statistics_pb2  # pylint: disable=g-import-not-at-top
  standard = statistics_pb2.Histogram.STANDARD
  splits = _ordered_splits(list(statistics))
  numeric: Dict[str, Dict[str, Any]] = {}
  for split in splits:
    for feature in statistics[split].features:
      if feature.WhichOneof('stats') != 'num_stats':
        continue
      for histogram in feature.num_stats.histograms:
        if histogram.type == standard and histogram.buckets:
          numeric.setdefault(_feature_name(feature), {})[split] = histogram
  if not numeric:
    return '<p>No numeric features.</p>'
  names = sorted(numeric)
  columns = min(3, len(names))
  rows = (len(names) + columns - 1) // columns
  figure = _new_figure(4.2 * columns, 2.6 * rows)
  for index, name in enumerate(names):
    axes = figure.add_subplot(rows, columns, index + 1)
    for split, histogram in numeric[name].items():
      counts = np.array([b.sample_count for b in histogram.buckets])
      lows = np.array([b.low_value for b in histogram.buckets])
      highs = np.array([b.high_value for b in histogram.buckets])
      fractions = counts / max(counts.sum(), 1e-12)
      if highs.max() == lows.min():  # A constant feature: one bar.
        axes.bar([lows[0]], [1.0], width=max(1.0, abs(lows[0]) * 0.05),
                 alpha=0.5, label=split)
      else:
        axes.bar(lows, fractions, width=highs - lows, align='edge',
                 alpha=0.5, label=split)
    axes.ticklabel_format(axis='x', useOffset=False)
    axes.set_title(name, fontsize=9)
    axes.set_ylabel('fraction')
    axes.tick_params(labelsize=8)
    axes.legend(fontsize=8)
  return _figure_html(figure, 'Histograms of the numeric features')


def _statistics_html(run: PipelineRun) -> str:
  artifact = run.output('StatisticsGen', 'statistics')
  statistics = load_statistics(artifact.uri)
  if not statistics:
    raise Unavailable(f'no splits in {artifact.uri}')
  return ('<p class="note">Rendered from StatisticsGen\'s statistics '
          '(TFDV\'s own Facets view is not embedded: it loads its code from '
          'a CDN, and this page must open offline).</p>'
          + _statistics_table(statistics)
          + _histograms_chart(statistics))


def _schema_rows(schema: Any) -> List[List[str]]:
  """Name, type, presence, shape/value count and domain of each feature."""
  from tensorflow_metadata.proto.v0 import schema_pb2  # pylint: disable=g-import-not-at-top
  rows = []
  for feature in schema.feature:
    presence = feature.presence
    presence_text = ('required' if presence.min_fraction == 1.0 else
                     'optional')
    if presence.HasField('min_count'):
      presence_text += f' (min count {presence.min_count})'
    if feature.HasField('shape'):
      dims = [str(dim.size) for dim in feature.shape.dim]
      shape = f'shape [{", ".join(dims)}]'
    elif feature.HasField('value_count'):
      count = feature.value_count
      shape = (f'{count.min}' if count.min == count.max
               else f'{count.min}–{count.max or "∞"}') + ' value(s)'
    else:
      shape = 'any number of values'
    domain_kind = feature.WhichOneof('domain_info')
    domain = '—'
    if domain_kind == 'int_domain' or domain_kind == 'float_domain':
      bounds = getattr(feature, domain_kind)
      parts = [f'{side} {getattr(bounds, side):g}' for side in ('min', 'max')
               if bounds.HasField(side)]
      domain = ', '.join(parts) or domain_kind
    elif domain_kind == 'string_domain':
      domain = 'one of ' + ', '.join(feature.string_domain.value)
    elif domain_kind == 'domain':
      domain = f'domain {feature.domain!r}'
    elif domain_kind:
      domain = domain_kind.replace('_domain', '')
    rows.append([feature.name, schema_pb2.FeatureType.Name(feature.type),
                 presence_text, shape, domain])
  return rows


def load_schema(schema_uri: str) -> Any:
  """The Schema proto of a Schema artifact."""
  # pylint: disable=g-import-not-at-top
  from google.protobuf import text_format
  from tensorflow_metadata.proto.v0 import schema_pb2
  # pylint: enable=g-import-not-at-top
  with open(os.path.join(schema_uri, 'schema.pbtxt'), encoding='utf-8') as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def _schema_html(run: PipelineRun) -> str:
  artifact = run.output('ImportSchemaGen', 'schema')
  rows = _schema_rows(load_schema(artifact.uri))
  return (f'<p>From <code>{_e(artifact.uri)}</code>.</p>'
          + _table(['Feature', 'Type', 'Presence', 'Shape / values',
                    'Domain'], rows, css_class='schema'))


def _anomalies_html(run: PipelineRun) -> str:
  from tfx_pipeline import data_validation  # pylint: disable=g-import-not-at-top
  anomalies = run.output('ExampleValidator', 'anomalies')
  statistics = run.output('StatisticsGen', 'statistics')
  schema = run.output('ImportSchemaGen', 'schema')
  schema_lines = data_validation.describe_anomalies(anomalies.uri)
  custom_lines = data_validation.custom_validation_problems(statistics.uri,
                                                            schema.uri)
  gate = run.nodes.get('DataValidationGate')
  if gate is None:
    gate_text = f'not reached ({run.why_missing("DataValidationGate")})'
  elif gate.succeeded:
    gate_text = '<b class="good">passed</b>'
  elif gate.state == 'FAILED':
    gate_text = ('<b class="bad">FAILED</b>: the run stopped here; nothing '
                 'downstream ran')
  else:
    gate_text = _e(gate.state)
  parts = [f'<p>DataValidationGate: {gate_text}.</p>']
  for title, lines in (('Schema anomalies (ExampleValidator)', schema_lines),
                       ('Custom checks (DataValidationGate)', custom_lines)):
    items = ''.join(f'<li>{_e(line)}</li>' for line in lines)
    parts.append(f'<p>{_e(title)}: ' + (
        f'</p><ul class="anomalies">{items}</ul>' if lines else
        '<span class="good">none</span></p>'))
  return ''.join(parts)


def _data_section(run: PipelineRun) -> str:
  return '\n'.join([
      _subsection('Statistics: train and eval', lambda: _statistics_html(run)),
      _subsection('Schema in use', lambda: _schema_html(run)),
      _subsection('Anomalies', lambda: _anomalies_html(run)),
  ])


# ----------------------------------------------------------------------------
# Model quality


def _eval_config(run: PipelineRun) -> Any:
  """The Evaluator's EvalConfig (its exec property)."""
  # pylint: disable=g-import-not-at-top
  from google.protobuf import json_format
  import tensorflow_model_analysis as tfma
  # pylint: enable=g-import-not-at-top
  text = run.node('Evaluator').exec_properties.get('eval_config')
  if not text:
    raise Unavailable('the Evaluator execution has no eval_config')
  return json_format.Parse(text, tfma.EvalConfig())


def describe_threshold(name: str, threshold: Any) -> List[str]:
  """A TFMA MetricThreshold on metric `name`, in words (one line per bound)."""
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
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
  import tensorflow_model_analysis as tfma  # pylint: disable=g-import-not-at-top
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
  return (f'<span class="metric" data-metric="{_e(name)}" '
          f'data-value="{value!r}">{_format(value)}</span>')


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
                 f'{_format(baseline[name])}, Δ {difference:+.4f}</span>')
      row.append(cell)
    rows.append(row)
  return (_table(header, rows, raw_html=True, css_class='quality')
          + f'<p class="muted" id="pq-definition">{_e(PQ_DEFINITION)}</p>')


def per_class_pq(metric_values: Mapping[str, float]
                 ) -> List[Tuple[str, bool, float]]:
  """(category name, is thing, PQ) of the `pq_class_<id>` metrics, highest
  PQ first (ties by name)."""
  from schemas import load_categories  # pylint: disable=g-import-not-at-top
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
    raise Unavailable('the evaluation has no per-class PQ')
  nonzero = [row for row in per_class if row[2] > 0]
  if not nonzero:
    return f'<p>All {len(per_class)} categories have PQ 0.</p>'
  figure = _new_figure(7.0, 0.9 + 0.22 * len(nonzero))
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
  return (_figure_html(figure, 'Per-class PQ')
          + f'<p class="muted">{left_out} of the {len(per_class)} categories '
          'have PQ 0 (absent from the eval set or never matched) and are '
          'left out.</p>')


def _quality_html(run: PipelineRun) -> str:
  from tfx_pipeline import run_summary  # pylint: disable=g-import-not-at-top
  evaluation = run.output('Evaluator', 'evaluation')
  by_model = run_summary.metric_values_by_model(evaluation.uri)
  candidate = by_model.get('candidate', by_model.get(''))
  if not candidate:
    raise Unavailable(f'no metrics in {evaluation.uri}')
  baseline = by_model.get('baseline')
  count = candidate.get(_EXAMPLE_COUNT)
  count_text = (f'<p>Eval images (ExampleCount): '
                f'<b data-metric="{_EXAMPLE_COUNT}">{int(count)}</b></p>'
                if count is not None else '')
  if baseline is not None:
    baseline_model = run.node('Evaluator').inputs.get('baseline_model', [])
    where = (f' (<code>{_e(baseline_model[0].uri)}</code>)'
             if baseline_model else '')
    baseline_text = (f'<p>Baseline: the last blessed model{where}; '
                     'its values and the difference are under each value.</p>')
  else:
    baseline_text = '<p>Baseline: none (no earlier blessed model).</p>'
  return (count_text + baseline_text
          + _table_caption('Panoptic quality of the candidate (eval split)')
          + quality_table(candidate, baseline)
          + _per_class_chart(candidate))


def _table_caption(text: str) -> str:
  return f'<p class="caption">{_e(text)}</p>'


def _gate_html(run: PipelineRun) -> str:
  blessing = run.output('Evaluator', 'blessing')
  evaluation = run.output('Evaluator', 'evaluation')
  blessed = int(blessing.properties.get('blessed', 0)) == 1
  decision = ('<b class="good" id="gate-decision">BLESSED</b>' if blessed else
              '<b class="bad" id="gate-decision">NOT BLESSED</b>')
  thresholds = ''.join(f'<li>{_e(line)}</li>'
                       for line in threshold_lines(_eval_config(run)))
  parts = [f'<p>Gate decision: {decision}</p>',
           f'<p>Thresholds (EvalConfig):</p><ul>{thresholds}</ul>']
  if not blessed:
    failures = _validation_failures(evaluation.uri)
    items = ''.join(f'<li>{_e(line)}</li>' for line in failures)
    parts.append('<p>Failed checks:</p><ul class="anomalies">'
                 f'{items}</ul>' if failures else
                 '<p>TFMA recorded no failed check.</p>')
  pusher = run.nodes.get('Pusher')
  pushed = (pusher.outputs.get('pushed_model', []) if pusher is not None
            and pusher.succeeded else [])
  if pushed and int(pushed[0].properties.get('pushed', 0)) == 1:
    destination = pushed[0].properties.get('pushed_destination', pushed[0].uri)
    parts.append(f'<p>Pushed to <code>{_e(destination)}</code>.</p>')
  elif pusher is not None and pusher.succeeded:
    parts.append('<p>Pusher: nothing pushed.</p>')
  else:
    parts.append(f'<p>Pusher: {_e(run.why_missing("Pusher"))}.</p>')
  return ''.join(parts)


def _quality_section(run: PipelineRun) -> str:
  return '\n'.join([
      _subsection('Panoptic quality', lambda: _quality_html(run)),
      _subsection('Gate decision', lambda: _gate_html(run)),
  ])


# ----------------------------------------------------------------------------
# Training


ScalarSeries = Dict[str, Dict[str, List[Tuple[int, float]]]]


def read_scalar_summaries(log_dir: str) -> ScalarSeries:
  """{subdirectory: {tag: [(step, value)]}} of the TF event files under
  `log_dir` (the subdirectory of files directly in it is '').

  Reads TF2 scalar summaries (rank-0 tensors) and TF1 `simple_value`s; at a
  repeated step the latest event wins.
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  latest: Dict[Tuple[str, str, int], Tuple[float, float]] = {}
  for directory, _, files in tf.io.gfile.walk(log_dir):
    subdir = os.path.relpath(directory, log_dir)
    subdir = '' if subdir == '.' else subdir
    for name in sorted(files):
      if 'tfevents' not in name:
        continue
      for event in tf.compat.v1.train.summary_iterator(
          os.path.join(directory, name)):
        for value in event.summary.value:
          if value.HasField('simple_value'):
            number = float(value.simple_value)
          elif value.HasField('tensor'):
            array = tf.make_ndarray(value.tensor)
            if array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
              continue
            number = float(array)
          else:
            continue
          key = (subdir, value.tag, int(event.step))
          if key not in latest or event.wall_time >= latest[key][0]:
            latest[key] = (event.wall_time, number)
  series: ScalarSeries = {}
  for (subdir, tag, step), (_, number) in sorted(latest.items()):
    series.setdefault(subdir, {}).setdefault(tag, []).append((step, number))
  return series


def _plot(axes: Any, points: Sequence[Tuple[int, float]], **style: Any) -> None:
  steps, values = zip(*points)
  axes.plot(steps, values, marker='o' if len(points) < 20 else None,
            markersize=3, **style)


def _training_charts(series: ScalarSeries) -> str:
  """The loss, learning-rate and validation-PQ charts."""
  Line = Tuple[Tuple[str, str], str, Dict[str, Any]]

  def lines_for(tag_pattern: str, label: str) -> List[Line]:
    """Lines of the tags matching `tag_pattern` in every subdirectory; an
    auxiliary decoder layer (group `layer`) is drawn thin and faint."""
    lines = []
    for subdir, tags in sorted(series.items()):
      for tag in sorted(tags):
        match = re.fullmatch(tag_pattern, tag)
        if not match:
          continue
        layer = match.groupdict().get('layer')
        style: Dict[str, Any] = {'linewidth': 0.8 if layer else 2}
        if layer:
          style['alpha'] = 0.35
        if subdir != 'train':
          style['linestyle'] = '--'
        name = f'{label} aux {layer}' if layer else label
        lines.append(((subdir, tag), f'{subdir} {name}'.strip(), style))
    return lines

  panels: List[Tuple[str, List[Line]]] = []
  total_tag = next((tag for tag in _TOTAL_LOSS_TAGS
                    if any(tag in tags for tags in series.values())), None)
  if total_tag:
    panels.append(('Total loss', lines_for(re.escape(total_tag), 'total')))
  for term, title in _LOSS_TERMS:
    panels.append((title, lines_for(re.escape(term) + r'(_(?P<layer>\d+))?',
                                    term)))
  panels.append(('Learning rate', lines_for(re.escape(_LEARNING_RATE_TAG),
                                            'learning rate')))
  panels.append(('PQ (validation)', lines_for('pq', 'PQ')))
  panels = [(title, lines) for title, lines in panels if lines]
  if not panels:
    tags = sorted({tag for tags in series.values() for tag in tags})
    raise Unavailable('the event files hold none of the expected scalars '
                      f'(tags: {tags})')
  columns = min(3, len(panels))
  rows = (len(panels) + columns - 1) // columns
  figure = _new_figure(4.4 * columns, 3.0 * rows)
  for index, (title, lines) in enumerate(panels):
    axes = figure.add_subplot(rows, columns, index + 1)
    for (subdir, tag), label, style in lines:
      _plot(axes, series[subdir][tag], label=label, **style)
    axes.set_title(title, fontsize=10)
    axes.set_xlabel('step', fontsize=8)
    axes.tick_params(labelsize=8)
    if len(lines) <= 8:
      axes.legend(fontsize=7)
  return _figure_html(figure, 'Training curves')


def _training_html(run: PipelineRun) -> str:
  model_run = run.output('Trainer', 'model_run')
  if not os.path.isdir(model_run.uri):
    raise Unavailable(f'{model_run.uri} does not exist')
  series = read_scalar_summaries(model_run.uri)
  if not series:
    raise Unavailable(f'no TensorBoard event files under {model_run.uri}')
  chart = _training_charts(series)
  last_rows = []
  for subdir, tags in sorted(series.items()):
    for tag, points in sorted(tags.items()):
      if re.search(r'_\d+$', tag):
        continue  # Auxiliary layers: in the charts only.
      step, value = points[-1]
      last_rows.append([subdir or '.', tag, step, f'{value:.6g}'])
  return (f'<p>From the event files under <code>{_e(model_run.uri)}</code> '
          '(solid: train, dashed: validation; faint: auxiliary decoder '
          'layers).</p>' + chart
          + '<details><summary>Last value of each scalar</summary>'
          + _table(['Directory', 'Tag', 'Step', 'Value'], last_rows)
          + '</details>')


def _training_section(run: PipelineRun) -> str:
  return _subsection('Loss curves and learning rate',
                     lambda: _training_html(run))


# ----------------------------------------------------------------------------
# Examples


def _category_names_and_colours() -> Tuple[Dict[int, str],
                                           Dict[int, Tuple[int, int, int]]]:
  from schemas import load_categories  # pylint: disable=g-import-not-at-top
  categories = load_categories()
  return ({int(c['id']): c['name'] for c in categories},
          {int(c['id']): tuple(c['color']) for c in categories})


def segment_colours(category_mask: np.ndarray, instance_mask: np.ndarray,
                    colours: Mapping[int, Tuple[int, int, int]]
                    ) -> Tuple[np.ndarray, np.ndarray]:
  """RGB colours of each pixel's panoptic segment and the segment boundaries.

  A segment is a (category, instance) pair; its colour is the category's,
  shifted per instance so that touching things of a category differ.
  Category 0 (void) is black. Unknown categories are grey.

  Returns:
    (uint8 [H, W, 3] colours, bool [H, W] pixels on a segment boundary).
  """
  category = category_mask.astype(np.int64)
  instance = instance_mask.astype(np.int64)
  colour = np.zeros(category.shape + (3,), np.int64)
  segment_ids = category * (instance.max(initial=0) + 1) + instance
  for segment_id in np.unique(segment_ids):
    pixels = segment_ids == segment_id
    category_id = int(category[pixels][0])
    if category_id == 0:
      continue
    base = np.array(colours.get(category_id, (128, 128, 128)), np.int64)
    instance_id = int(instance[pixels][0])
    # Up to ±20 per channel: shades of the legend's colour.
    shift = ((np.array([37, -53, 71]) * instance_id) % 41 - 20
             if instance_id else 0)
    colour[pixels] = np.clip(base + shift, 0, 255)
  boundary = np.zeros(category.shape, bool)
  boundary[:-1, :] |= segment_ids[:-1, :] != segment_ids[1:, :]
  boundary[1:, :] |= segment_ids[:-1, :] != segment_ids[1:, :]
  boundary[:, :-1] |= segment_ids[:, :-1] != segment_ids[:, 1:]
  boundary[:, 1:] |= segment_ids[:, :-1] != segment_ids[:, 1:]
  return colour.astype(np.uint8), boundary


def overlay(image: np.ndarray, category_mask: np.ndarray,
            instance_mask: np.ndarray,
            colours: Mapping[int, Tuple[int, int, int]]) -> np.ndarray:
  """The image with its panoptic segments blended in (void left as is)."""
  colour, boundary = segment_colours(category_mask, instance_mask, colours)
  alpha = np.where(category_mask > 0, SEGMENT_OVERLAY_ALPHA, 0.0)[..., None]
  blended = image.astype(np.float32) * (1 - alpha) + colour * alpha
  blended[boundary] = 255
  return blended.astype(np.uint8)


def _png_img(array: np.ndarray, alt: str) -> str:
  from PIL import Image  # pylint: disable=g-import-not-at-top
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return (f'<img class="example" alt="{_e(alt)}" '
          f'src="{_png_data_uri(buffer.getvalue())}">')


def _decode(feature: Any, channels: int) -> np.ndarray:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  return tf.io.decode_image(feature.bytes_list.value[0], channels=channels,
                            expand_animations=False).numpy()


def prediction_at_image_size(mask: np.ndarray, pixel_valid: np.ndarray,
                             original_size: Sequence[int]) -> np.ndarray:
  """A model-output map cropped to the image's (top-left) valid region and
  resized (nearest) to the original height and width."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  rows = np.flatnonzero(pixel_valid.any(axis=1))
  cols = np.flatnonzero(pixel_valid.any(axis=0))
  height, width = int(original_size[0]), int(original_size[1])
  if rows.size == 0 or cols.size == 0:
    return np.zeros((height, width), mask.dtype)
  cropped = mask[:rows[-1] + 1, :cols[-1] + 1].astype(np.int32)
  resized = Image.fromarray(cropped).resize((width, height), Image.NEAREST)
  return np.asarray(resized).astype(mask.dtype)


def _eval_records(examples_uri: str, count: int) -> List[bytes]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, 'Split-eval',
                                               '*')))
  if not files:
    raise Unavailable(f'no eval split files in {examples_uri}')
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return [record.numpy() for record in dataset.take(count)]


def _legend(category_ids: Sequence[int], names: Mapping[int, str],
            colours: Mapping[int, Tuple[int, int, int]]) -> str:
  items = ''.join(
      f'<span class="legend-item"><span class="swatch" style="background:'
      f'rgb{tuple(colours.get(i, (128, 128, 128)))}"></span>'
      f'{_e(names.get(i, i))}</span>' for i in category_ids)
  return f'<div class="legend">{items}</div>'


def _examples_html(run: PipelineRun, num_examples: int) -> str:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from tfx.utils import path_utils  # pylint: disable=g-import-not-at-top
  model = run.output('Trainer', 'model')
  examples = run.output('ImportExampleGen', 'examples')
  serving_dir = path_utils.serving_model_path(model.uri)
  if not os.path.isdir(serving_dir):
    raise Unavailable(f'no exported model in {serving_dir}')
  records = _eval_records(examples.uri, num_examples)
  loaded = tf.saved_model.load(serving_dir)
  serve = loaded.signatures['serving_default']
  outputs = {key: value.numpy()
             for key, value in serve(examples=tf.constant(records)).items()}
  names, colours = _category_names_and_colours()
  blocks = []
  for index, record in enumerate(records):
    features = tf.train.Example.FromString(record).features.feature
    image = _decode(features['image/encoded'], 3)
    gt_category = _decode(features['image/panoptic/category_mask'], 1)[..., 0]
    gt_instance = _decode(features['image/panoptic/instance_mask'], 1)[..., 0]
    size = gt_category.shape
    pred_category, pred_instance = (
        prediction_at_image_size(outputs[key][index],
                                 outputs['pixel_valid'][index],
                                 outputs['original_size'][index])
        for key in ('category_mask', 'instance_mask'))
    if pred_category.shape != size:
      raise Unavailable(f'the model\'s original_size {pred_category.shape} '
                        f'differs from the image size {size}')
    source_id = features['image/source_id'].bytes_list.value[0].decode()
    present = sorted((set(np.unique(gt_category)) |
                      set(np.unique(pred_category))) - {0})
    panels = ''.join(
        f'<figure>{_png_img(array, f"{title} {source_id}")}'
        f'<figcaption>{_e(title)}</figcaption></figure>'
        for title, array in (
            ('image', image),
            ('ground truth', overlay(image, gt_category, gt_instance, colours)),
            ('prediction' if pred_category.any() else
             'prediction (no segment: all void)',
             overlay(image, pred_category, pred_instance, colours))))
    blocks.append(f'<div class="example-row"><p>Image '
                  f'<code>{_e(source_id)}</code> ({size[1]}×{size[0]})</p>'
                  f'<div class="panels">{panels}</div>'
                  f'{_legend([int(i) for i in present], names, colours)}</div>')
  return (f'<p>{len(records)} eval images of <code>{_e(examples.uri)}</code> '
          f'through the exported model <code>{_e(serving_dir)}</code> '
          '(signature serving_default); segments coloured by category, '
          'instances shifted in shade, void not coloured.</p>'
          + ''.join(blocks))


def _examples_section(run: PipelineRun, num_examples: int) -> str:
  return _subsection('Ground truth and predictions',
                     lambda: _examples_html(run, num_examples))


# ----------------------------------------------------------------------------
# Provenance


def _flatten(config: Any, prefix: str = '') -> Dict[str, Any]:
  if isinstance(config, dict):
    flat = {}
    for key, value in config.items():
      flat.update(_flatten(value, f'{prefix}.{key}' if prefix else str(key)))
    return flat
  return {prefix: config}


def _hyperparameters_html(run: PipelineRun) -> str:
  trainer = run.nodes.get('Trainer')
  if trainer is None:
    raise Unavailable(run.why_missing('Trainer'))
  custom_config = json.loads(trainer.exec_properties.get('custom_config')
                             or '{}')
  rows = [[key, json.dumps(value)] for key, value in sorted(
      custom_config.items())]
  for key in ('train_args', 'eval_args'):
    if key in trainer.exec_properties:
      rows.append([key, ' '.join(str(trainer.exec_properties[key]).split())])
  parts = [_table_caption('Trainer custom_config and arguments (ML Metadata)'),
           _table(['Key', 'Value'], rows)]
  model_run = trainer.outputs.get('model_run', [])
  params_path = (os.path.join(model_run[0].uri, 'params.yaml') if model_run
                 else None)
  if params_path and os.path.isfile(params_path):
    import yaml  # pylint: disable=g-import-not-at-top
    with open(params_path, encoding='utf-8') as f:
      text = f.read()
    flat = _flatten(yaml.safe_load(text) or {})
    key_rows = [[key, json.dumps(value)] for key, value in sorted(flat.items())
                if any(key == p or key.startswith(p + '.')
                       for p in _KEY_HYPERPARAMETERS)]
    parts += [_table_caption(f'Key hyperparameters ({params_path})'),
              _table(['Parameter', 'Value'], key_rows, css_class='params'),
              '<details><summary>Full experiment config (params.yaml)'
              f'</summary><pre>{_e(text)}</pre></details>']
  else:
    parts.append('<p>No params.yaml in the Trainer\'s model_run directory.</p>')
  return ''.join(parts)


def _artifacts_html(run: PipelineRun) -> str:
  rows = []
  for node_id in _node_order(run):
    node = run.nodes[node_id]
    for direction, artifacts_by_key in (('out', node.outputs),
                                        ('in', node.inputs)):
      for key, artifacts in sorted(artifacts_by_key.items()):
        if direction == 'in' and node_id != 'Evaluator':
          continue  # Inputs are some other node's outputs, listed there.
        for artifact in artifacts:
          rows.append([node_id, f'{key} ({direction})', artifact.type_name,
                       artifact.uri])
  return _table(['Component', 'Artifact', 'Type', 'URI'], rows,
                css_class='artifacts')


def _versions_html() -> str:
  rows = []
  for package in PACKAGES:
    try:
      version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
      version = 'not installed'
    rows.append([package, version])
  rows.append(['python', sys.version.split()[0]])
  return _table(['Package', 'Version'], rows)


def _provenance_section(run: PipelineRun) -> str:
  overview = _table(None, [
      ['Pipeline', run.pipeline_name],
      ['Run id', run.run_id],
      ['Started', run.started.isoformat(sep=' ', timespec='seconds')],
      ['Pipeline root', run.pipeline_root],
      ['ML Metadata', os.path.join(run.pipeline_root, METADATA_FILE)],
  ], css_class='overview')
  return '\n'.join([
      overview,
      _subsection('Artifacts', lambda: _artifacts_html(run)),
      _subsection('Experiment and hyperparameters',
                  lambda: _hyperparameters_html(run)),
      _subsection('Package versions', _versions_html),
  ])


# ----------------------------------------------------------------------------
# The page


def _node_order(run: PipelineRun) -> List[str]:
  known = [node_id for node_id in PIPELINE_NODES if node_id in run.nodes]
  return known + sorted(set(run.nodes) - set(known))


def _status_strip(run: PipelineRun) -> str:
  items = []
  for node_id in PIPELINE_NODES + tuple(
      sorted(set(run.nodes) - set(PIPELINE_NODES))):
    node = run.nodes.get(node_id)
    state = node.state.lower() if node is not None else 'did not run'
    css = ('good' if node is not None and node.succeeded else
           'bad' if node is not None and node.state == 'FAILED' else 'muted')
    items.append(f'<li class="{css}">{_e(node_id)}: {_e(state)}</li>')
  failed = run.failed_nodes()
  if failed:
    outcome = (f'<p class="bad">The run failed at {_e(failed[0])}'
               + (f': {_e(run.error)}' if run.error else '') + '</p>')
  else:
    outcome = ''
  return f'<ul class="status">{"".join(items)}</ul>{outcome}'


_STYLE = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif;
  margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; color: #1f2328;
  line-height: 1.45; }
header { border-bottom: 1px solid #d0d7de; padding: 16px 0 8px; }
nav a { margin-right: 16px; }
h2 { border-bottom: 1px solid #d0d7de; padding-bottom: 4px; margin-top: 36px; }
h3 { margin-top: 24px; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 14px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left;
  vertical-align: top; }
th { background: #f6f8fa; }
code, pre { font-family: ui-monospace, 'SFMono-Regular', monospace;
  font-size: 13px; }
pre { background: #f6f8fa; padding: 8px; overflow-x: auto; }
td code { word-break: break-all; }
td code.feature { word-break: normal; white-space: nowrap; }
.artifacts td:last-child { font-family: ui-monospace, monospace;
  font-size: 12px; word-break: break-all; }
.good { color: #1a7f37; }
.bad { color: #cf222e; }
.muted { color: #656d76; }
.unavailable { color: #9a6700; background: #fff8c5; padding: 6px 10px;
  border-left: 4px solid #d4a72c; }
.note, .caption { color: #656d76; font-size: 14px; }
.status { list-style: none; padding: 0; display: flex; flex-wrap: wrap;
  gap: 4px 16px; font-size: 14px; }
.metric { font-weight: 600; }
img.chart { max-width: 100%; }
.panels { display: flex; gap: 12px; flex-wrap: wrap; }
figure { margin: 0; text-align: center; }
img.example { width: 256px; image-rendering: pixelated; border: 1px solid
  #d0d7de; }
figcaption { font-size: 13px; color: #656d76; }
.legend { margin: 6px 0 18px; font-size: 13px; }
.legend-item { margin-right: 14px; white-space: nowrap; }
.swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px;
  vertical-align: middle; border: 1px solid #999; }
"""


def build_report_html(run: PipelineRun,
                      num_examples: int = DEFAULT_NUM_EXAMPLES) -> str:
  """The review page of `run` as one self-contained HTML document."""
  builders = {
      'data': lambda: _data_section(run),
      'quality': lambda: _quality_section(run),
      'training': lambda: _training_section(run),
      'examples': lambda: _examples_section(run, num_examples),
      'provenance': lambda: _provenance_section(run),
  }
  sections = []
  for section_id, title in SECTIONS:
    sections.append(f'<section id="{section_id}"><h2>{_e(title)}</h2>\n'
                    f'{builders[section_id]()}</section>')
  nav = ''.join(f'<a href="#{section_id}">{_e(title)}</a>'
                for section_id, title in SECTIONS)
  title = f'{run.pipeline_name} run {run.run_id}'
  generated = datetime.datetime.now().isoformat(sep=' ', timespec='seconds')
  return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>{_e(title)}</title>
<style>{_STYLE}</style>
</head>
<body>
<header>
<h1>{_e(title)}</h1>
<p class="muted">Review report generated {_e(generated)} from
<code>{_e(os.path.join(run.pipeline_root, METADATA_FILE))}</code>.</p>
{_status_strip(run)}
<nav>{nav}</nav>
</header>
{''.join(sections)}
</body>
</html>
"""


def default_output_path(pipeline_root: str, run_id: str) -> str:
  """PIPELINE_ROOT/reports/run-<run id with only [A-Za-z0-9._-]>.html."""
  safe = re.sub(r'[^A-Za-z0-9._-]', '-', run_id)
  return os.path.join(pipeline_root, REPORTS_DIR, f'run-{safe}.html')


def write_report(pipeline_root: str, run_id: Optional[str] = None,
                 output: Optional[str] = None,
                 num_examples: int = DEFAULT_NUM_EXAMPLES) -> str:
  """Writes the review page of a run and returns its path.

  Args:
    pipeline_root: a local pipeline root with `metadata.sqlite`.
    run_id: the pipeline run (default: the latest).
    output: the HTML file (default: `default_output_path`).
    num_examples: eval images shown with ground truth and prediction.

  Raises:
    ReportError: no ML Metadata, no run, or no run `run_id`.
  """
  pipeline_root = os.path.abspath(pipeline_root)
  run = load_run(pipeline_root, run_id)
  page = build_report_html(run, num_examples)
  output = output or default_output_path(pipeline_root, run.run_id)
  os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
  with open(output, 'w', encoding='utf-8') as f:
    f.write(page)
  return output


def report_after_run(pipeline_root: str) -> str:
  """Writes the page of the latest run; returns the line to show the user.

  For the end of `maskformer-tfx run`, whether the run succeeded or not:
  never raises (a failure is logged and named in the line).
  """
  try:
    path = write_report(pipeline_root)
  except Exception as error:  # pylint: disable=broad-except
    logging.exception('The review report could not be written.')
    return f'Review report: not written ({type(error).__name__}: {error})'
  return f'Review report: {path}'


# ----------------------------------------------------------------------------
# CLI


def _positive_int(text: str) -> int:
  value = int(text)
  if value < 1:
    raise argparse.ArgumentTypeError(f'must be at least 1, got {value}')
  return value


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
  """Registers `report PIPELINE_ROOT [--run RUN_ID] [--output FILE.html]`."""
  parser = subparsers.add_parser(
      'report',
      help='Write the review page (HTML) of a pipeline run.',
      description=(
          'Writes one self-contained HTML page (no network needed) for a run '
          'found in PIPELINE_ROOT/metadata.sqlite: data statistics, schema '
          'and anomalies; panoptic quality and the gate decision; training '
          'curves; example predictions; provenance. Sections the run did '
          'not produce say why.'))
  parser.add_argument('pipeline_root', metavar='PIPELINE_ROOT',
                      help='Pipeline root of a local run (holds '
                      'metadata.sqlite).')
  parser.add_argument('--run', dest='run_id', default=None, metavar='RUN_ID',
                      help='Pipeline run id (default: the latest run).')
  parser.add_argument('--output', default=None, metavar='FILE.html',
                      help='Output file (default PIPELINE_ROOT/reports/'
                      'run-<RUN_ID>.html).')
  parser.add_argument('--num-examples', type=_positive_int,
                      default=DEFAULT_NUM_EXAMPLES,
                      help='Eval images with predictions (default '
                      f'{DEFAULT_NUM_EXAMPLES}).')
  parser.add_argument('--list-runs', action='store_true',
                      help='List the run ids of PIPELINE_ROOT and exit.')
  parser.set_defaults(handler=run_report_command)
  return parser


def run_report_command(args: argparse.Namespace) -> int:
  """Handler of the `report` subcommand."""
  try:
    if args.list_runs:
      for run_id, started in list_runs(args.pipeline_root):
        print(f'{run_id}\t{started.isoformat(sep=" ", timespec="seconds")}')
      return 0
    path = write_report(args.pipeline_root, args.run_id, args.output,
                        args.num_examples)
  except ReportError as error:
    print(f'maskformer-tfx report: {error}', file=sys.stderr)
    return 1
  print(f'Review report: {path}')
  return 0
