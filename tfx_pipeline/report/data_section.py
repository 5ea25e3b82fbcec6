"""The Data section: StatisticsGen's statistics of each split (tables and
histograms rendered here: TFDV's Facets view loads its code from a CDN, which
a page that must open offline cannot), the schema in use and the anomalies
(ExampleValidator's and the DataValidationGate's custom checks)."""

import os
from typing import Any, Dict, List, Mapping, Sequence

import numpy as np

from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record


def load_statistics(statistics_uri: str) -> Dict[str, Any]:
  """{split: DatasetFeatureStatistics} of a StatisticsGen artifact."""
  import tensorflow as tf
  from tensorflow_metadata.proto.v0 import statistics_pb2
  from tfx_pipeline import data_validation
  statistics = {}
  for split, directory in data_validation._split_dirs(statistics_uri):
    with tf.io.gfile.GFile(os.path.join(directory, 'FeatureStats.pb'),
                           'rb') as f:
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
    return (f'mean {h.number(stats.mean)}, std {h.number(stats.std_dev)}, '
            f'min {h.number(stats.min)}, median {h.number(stats.median)}, '
            f'max {h.number(stats.max)}, zeros {h.number(stats.num_zeros)}')
  if kind == 'string_stats':
    stats = feature.string_stats
    top = (f', top {_shorten(stats.top_values[0].value)!r} '
           f'({h.number(stats.top_values[0].frequency)}×)'
           if stats.top_values else '')
    return (f'{stats.unique} unique, avg length '
            f'{h.number(stats.avg_length)}{top}')
  if kind == 'bytes_stats':
    stats = feature.bytes_stats
    return (f'bytes: min {h.number(stats.min_num_bytes)}, avg '
            f'{h.number(stats.avg_num_bytes)}, max '
            f'{h.number(stats.max_num_bytes)}')
  return kind or ''


def _statistics_table(statistics: Mapping[str, Any]) -> str:
  """Features × splits: presence, values per example and a summary."""
  from tensorflow_metadata.proto.v0 import statistics_pb2
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
    cells = [f'<code class="feature">{h.e(name)}</code>', h.e(type_text)]
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
          + h.e(_feature_summary(feature)) + '</span>')
    rows.append(cells)
  return h.table(header, rows, raw_html=True, css_class='statistics')


def _histograms_chart(statistics: Mapping[str, Any]) -> str:
  """Histograms of the numeric features, the splits overlaid."""
  from tensorflow_metadata.proto.v0 import statistics_pb2
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
  figure = h.new_figure(4.2 * columns, 2.6 * rows)
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
  return h.figure_html(figure, 'Histograms of the numeric features')


def _statistics_html(run: run_record.PipelineRun) -> str:
  artifact = run.output('StatisticsGen', 'statistics')
  statistics = load_statistics(artifact.uri)
  if not statistics:
    raise run_record.Unavailable(f'no splits in {artifact.uri}')
  return ('<p class="note">Rendered from StatisticsGen\'s statistics '
          '(TFDV\'s own Facets view is not embedded: it loads its code from '
          'a CDN, and this page must open offline).</p>'
          + _statistics_table(statistics)
          + _histograms_chart(statistics))


def _schema_rows(schema: Any) -> List[List[str]]:
  """Name, type, presence, shape/value count and domain of each feature."""
  from tensorflow_metadata.proto.v0 import schema_pb2
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
  from google.protobuf import text_format
  import tensorflow as tf
  from tensorflow_metadata.proto.v0 import schema_pb2
  with tf.io.gfile.GFile(os.path.join(schema_uri, 'schema.pbtxt'), 'r') as f:
    return text_format.Parse(f.read(), schema_pb2.Schema())


def _schema_html(run: run_record.PipelineRun) -> str:
  artifact = run.output('ImportSchemaGen', 'schema')
  rows = _schema_rows(load_schema(artifact.uri))
  return (f'<p>From <code>{h.e(artifact.uri)}</code>.</p>'
          + h.table(['Feature', 'Type', 'Presence', 'Shape / values',
                    'Domain'], rows, css_class='schema'))


def _anomalies_html(run: run_record.PipelineRun) -> str:
  from tfx_pipeline import data_validation
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
    gate_text = h.e(gate.state)
  parts = [f'<p>DataValidationGate: {gate_text}.</p>']
  for title, lines in (('Schema anomalies (ExampleValidator)', schema_lines),
                       ('Custom checks (DataValidationGate)', custom_lines)):
    items = ''.join(f'<li>{h.e(line)}</li>' for line in lines)
    parts.append(f'<p>{h.e(title)}: ' + (
        f'</p><ul class="anomalies">{items}</ul>' if lines else
        '<span class="good">none</span></p>'))
  return ''.join(parts)


def _span_html(run: run_record.PipelineRun) -> str:
  examples = run.output('ImportExampleGen', 'examples')
  span = examples.properties.get('span')
  if span is None:
    raise run_record.Unavailable(
        f'the Examples artifact {examples.uri} records no span')
  return (f'<p>Span <b>{h.e(span)}</b>: the <code>span</code> property of '
          f'ImportExampleGen\'s Examples artifact <code>{h.e(examples.uri)}'
          '</code> in ML Metadata (TFX records span 0 for split patterns '
          'without <code>{SPAN}</code>).</p>')


def data_section(run: run_record.PipelineRun) -> str:
  return '\n'.join([
      h.subsection('Span of the data', lambda: _span_html(run)),
      h.subsection('Statistics: train and eval', lambda: _statistics_html(run)),
      h.subsection('Schema in use', lambda: _schema_html(run)),
      h.subsection('Anomalies', lambda: _anomalies_html(run)),
  ])

