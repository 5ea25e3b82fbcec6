"""The Drift section: the DriftValidator's verdict on this span's panoptic
statistics against those of the data the last blessed model was trained on.

It reads the `drift.json` of the DriftValidator's `drift` artifact (found by
node id and output key, like every section: from ML Metadata, from the
ReviewReport component's inputs, or from a Vertex job's task outputs) and
shows the verdict, each compared feature's distance against its threshold
(drifted ones highlighted), and the segment categories' frequencies of this
span beside the baseline's as paired bars (inline SVG: the page's CSP allows
inline markup, nothing loaded).
"""

import html
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record

DRIFT_NODE = 'DriftValidator'
DRIFT_OUTPUT = 'drift'
DRIFT_FILE = 'drift.json'
CATEGORY_FEATURE = 'segment_category'
MAX_CATEGORIES = 24
_COMPARATORS = {'jensen_shannon_divergence': 'Jensen–Shannon divergence',
                'infinity_norm': 'L-infinity distance',
                'num_examples': 'number-of-examples ratio'}
_FEATURE_KEYS = ('feature', 'comparator', 'distance', 'threshold', 'drifted')
_THIS_COLOR, _BASELINE_COLOR = '#0969da', '#8c959f'


def load_drift(drift_uri: str) -> Dict[str, Any]:
  """The checked content of `<drift_uri>/drift.json`.

  Raises:
    ValueError: not JSON, or not the DriftValidator's layout (names the
      file and what is wrong).
  """
  import tensorflow as tf
  path = os.path.join(drift_uri, DRIFT_FILE)
  if not tf.io.gfile.exists(path):
    raise run_record.Unavailable(f'no {DRIFT_FILE} in {drift_uri}')
  with tf.io.gfile.GFile(path, 'r') as f:
    try:
      drift = json.load(f)
    except json.JSONDecodeError as error:
      raise ValueError(f'{path} is not JSON: {error}') from None
  if not isinstance(drift, dict) or not isinstance(drift.get('features'),
                                                   list):
    raise ValueError(f'{path} has no "features" list: not a DriftValidator '
                     'report')
  for index, feature in enumerate(drift['features']):
    missing = [key for key in _FEATURE_KEYS
               if not isinstance(feature, dict) or key not in feature]
    if missing:
      raise ValueError(f'{path}: features[{index}] lacks {missing}')
  return drift


def load_dataset_statistics(path: str) -> Any:
  """The first DatasetFeatureStatistics of a FeatureStats.pb file."""
  import tensorflow as tf
  from google.protobuf import message
  from tensorflow_metadata.proto.v0 import statistics_pb2
  with tf.io.gfile.GFile(path, 'rb') as f:
    data = f.read()
  try:
    statistics = statistics_pb2.DatasetFeatureStatisticsList.FromString(data)
  except message.DecodeError as error:
    raise ValueError(f'{path} is not a DatasetFeatureStatisticsList: '
                     f'{error}') from None
  if not statistics.datasets:
    raise ValueError(f'{path} holds no dataset statistics')
  return statistics.datasets[0]


def category_frequencies(dataset: Any, feature_name: str = CATEGORY_FEATURE
                         ) -> Dict[str, float]:
  """{value: fraction of all values} of a feature of one dataset's statistics.

  A categorical feature (TFDV string statistics: the schema marks the int
  categorical) gives one entry per category id from its rank histogram (or
  its top values); a numeric one gives one per histogram bucket
  ('low–high'). Empty if the statistics lack the feature.
  """
  for feature in dataset.features:
    if ('.'.join(feature.path.step) or feature.name) != feature_name:
      continue
    counts: Dict[str, float] = {}
    kind = feature.WhichOneof('stats')
    if kind == 'string_stats':
      stats = feature.string_stats
      buckets = stats.rank_histogram.buckets
      if buckets:
        counts = {bucket.label: bucket.sample_count for bucket in buckets}
      else:
        counts = {top.value: top.frequency for top in stats.top_values}
    elif kind == 'num_stats':
      from tensorflow_metadata.proto.v0 import statistics_pb2
      for histogram in feature.num_stats.histograms:
        if histogram.type == statistics_pb2.Histogram.STANDARD:
          counts = {f'{h.number(b.low_value)}–{h.number(b.high_value)}':
                    b.sample_count for b in histogram.buckets}
    total = sum(counts.values())
    return {value: count / total for value, count in counts.items()
            if total > 0}
  return {}


def _category_labels(values: Sequence[str]) -> Dict[str, str]:
  """{value: '<name> (<id>)'} of COCO category ids; other values as they
  are."""
  from schemas import load_categories
  names = {str(category['id']): category['name']
           for category in load_categories()}
  return {value: f'{names[value]} ({value})' if value in names else value
          for value in values}


def paired_bars_svg(this_span: Mapping[str, float],
                    baseline: Optional[Mapping[str, float]],
                    labels: Mapping[str, str],
                    max_rows: int = MAX_CATEGORIES) -> Tuple[str, int]:
  """Horizontal bars, this span's fraction above the baseline's, per value.

  Rows are the values most frequent in either, most frequent first.
  Returns (the <svg> element, how many values were left out).
  """
  baseline = baseline or {}
  values = sorted(set(this_span) | set(baseline),
                  key=lambda v: (-max(this_span.get(v, 0.0),
                                      baseline.get(v, 0.0)), v))
  shown, left_out = values[:max_rows], max(0, len(values) - max_rows)
  label_width, bar_width, row_height = 220, 360, 26
  top = max([*this_span.values(), *baseline.values(), 1e-12])
  width, height = label_width + bar_width + 70, row_height * len(shown) + 4
  parts = [f'<svg class="drift-bars" xmlns="http://www.w3.org/2000/svg" '
           f'width="{width}" height="{height}" role="img" '
           'aria-label="Category frequencies, this span beside the baseline">']
  for row, value in enumerate(shown):
    y = row * row_height + 2
    label = labels.get(value, value)
    parts.append(f'<g data-value="{h.e(value)}"><text x="{label_width - 6}" '
                 f'y="{y + 16}" text-anchor="end" font-size="12">'
                 f'{html.escape(label)}</text>')
    for offset, fractions, color, who in (
        (0, this_span, _THIS_COLOR, 'this span'),
        (11, baseline, _BASELINE_COLOR, 'baseline')):
      if who == 'baseline' and not baseline:
        continue
      fraction = fractions.get(value, 0.0)
      length = bar_width * fraction / top
      parts.append(
          f'<rect x="{label_width}" y="{y + offset + 2}" width="{length:.1f}"'
          f' height="9" fill="{color}" data-series="{who}" '
          f'data-fraction="{fraction:.6f}"><title>{html.escape(label)}, '
          f'{who}: {100 * fraction:.1f}%</title></rect>'
          f'<text x="{label_width + length + 4:.1f}" y="{y + offset + 10}" '
          f'font-size="10" fill="#57606a">{100 * fraction:.1f}%</text>')
    parts.append('</g>')
  parts.append('</svg>')
  return ''.join(parts), left_out


def _verdict_html(drift: Mapping[str, Any], stopped_at: Optional[str]) -> str:
  baseline = drift.get('baseline_model')
  message = drift.get('message') or ''
  if not baseline:
    return ('<p><b class="muted" id="drift-verdict">NO BASELINE</b>: no '
            'baseline (first run): no blessed model yet, so nothing to '
            'compare this span with; the run passes the drift gate.</p>')
  against = (f'against the data of blessed model <code>{h.e(baseline)}'
             '</code>')
  if not drift.get('drifted'):
    return (f'<p><b class="good" id="drift-verdict">NO DRIFT</b> {against}.'
            '</p>')
  if drift.get('allow_drift'):
    return ('<p><b class="bad" id="drift-verdict">ALLOWED (--allow-drift)'
            f'</b>: the data drifted {against}, and the run trained anyway.'
            f'</p><p class="bad">{h.e(message)}</p>')
  stopped = (f' The run stopped at {h.e(stopped_at)}, before the Trainer.'
             if stopped_at else '')
  return (f'<p><b class="bad" id="drift-verdict">DRIFTED</b> {against}.'
          f'{stopped}</p><p class="bad">{h.e(message)}</p>')


def _features_table(features: Sequence[Mapping[str, Any]]) -> str:
  rows = []
  for feature in features:
    drifted = bool(feature['drifted'])
    result = ('<b class="bad">drifted</b>' if drifted else
              '<span class="good">within</span>')
    sign = '&gt;' if drifted else '≤'
    name = h.e(feature['feature'])
    rows.append(
        f'<tr class="{"bad" if drifted else ""}" data-feature="{name}" '
        f'data-drifted="{str(drifted).lower()}">'
        f'<td><code class="feature">{name}</code></td>'
        f'<td>{h.e(_COMPARATORS.get(feature["comparator"], feature["comparator"]))}'
        f'</td><td>{h.e(h.format(float(feature["distance"])))} {sign} '
        f'{h.e(h.format(float(feature["threshold"])))}</td><td>{result}</td>'
        '</tr>')
  head = ''.join(f'<th>{name}</th>' for name in (
      'Feature', 'Comparator', 'Distance vs threshold', 'Result'))
  return (f'<table class="drift"><thead><tr>{head}</tr></thead>'
          f'<tbody>{"".join(rows)}</tbody></table>')


def _categories_html(drift: Mapping[str, Any]) -> str:
  if not drift.get('statistics'):
    raise run_record.Unavailable(f'{DRIFT_FILE} names no statistics')
  this_span = category_frequencies(load_dataset_statistics(
      drift['statistics']))
  if not this_span:
    raise run_record.Unavailable(
        f'{drift["statistics"]} has no {CATEGORY_FEATURE!r} statistics')
  baseline = None
  if drift.get('baseline_statistics'):
    baseline = category_frequencies(load_dataset_statistics(
        drift['baseline_statistics']))
  labels = _category_labels(sorted(set(this_span) | set(baseline or {})))
  svg, left_out = paired_bars_svg(this_span, baseline, labels)
  legend = (f'<span class="legend-item"><span class="swatch" style="'
            f'background:{_THIS_COLOR}"></span>this span</span>')
  if baseline:
    legend += (f'<span class="legend-item"><span class="swatch" style="'
               f'background:{_BASELINE_COLOR}"></span>baseline (the data of '
               'the blessed model)</span>')
  else:
    legend += '<span class="muted">no baseline statistics</span>'
  more = (f'<p class="note">{left_out} less frequent value(s) not shown.</p>'
          if left_out else '')
  sources: List[str] = [f'this span: <code>{h.e(drift["statistics"])}</code>']
  if baseline:
    sources.append('baseline: <code>'
                   f'{h.e(drift["baseline_statistics"])}</code>')
  return (f'<p class="caption">Fraction of all segments per category '
          f'({CATEGORY_FEATURE}); {"; ".join(sources)}.</p>'
          f'<div class="legend">{legend}</div>{svg}{more}')


def _summary_html(run: run_record.PipelineRun) -> str:
  artifact = run.output(DRIFT_NODE, DRIFT_OUTPUT)
  drift = load_drift(artifact.uri)
  failed = run.failed_nodes()
  span = drift.get('span')
  parts = [_verdict_html(drift, failed[0] if failed else None)]
  if span is not None:
    parts.append(f'<p>Span <b>{h.e(span)}</b>.</p>')
  if drift['features']:
    parts.append(_features_table(drift['features']))
  elif drift.get('baseline_model'):
    parts.append('<p>No feature was compared.</p>')
  parts.append(f'<p class="note">From <code>'
               f'{h.e(os.path.join(artifact.uri, DRIFT_FILE))}</code>.</p>')
  return ''.join(parts)


def drift_section(run: run_record.PipelineRun) -> str:
  def categories() -> str:
    return _categories_html(load_drift(run.output(DRIFT_NODE,
                                                  DRIFT_OUTPUT).uri))

  return '\n'.join([
      h.subsection('Verdict and compared features', lambda: _summary_html(run)),
      h.subsection('Segment categories: this span and the baseline',
                   categories),
  ])
