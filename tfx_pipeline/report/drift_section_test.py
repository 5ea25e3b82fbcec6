"""The Drift section from a DriftValidator-style drift.json and TFDV
statistics of two spans (this one swaps category 1 for 3)."""

import html.parser
import json
import pathlib
from typing import Any, Dict, List, Optional

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from tfx_pipeline.report import drift_section
from tfx_pipeline.report import page
from tfx_pipeline.report import run_record

_SCHEMA = """
feature { name: "segment_category" type: INT
          int_domain { is_categorical: true } }
feature { name: "num_segments" type: INT }
"""
BASELINE_MODEL = '/root/Trainer/model/4'


def _write_statistics(directory: pathlib.Path,
                      categories: List[List[int]]) -> str:
  """FeatureStats.pb of TFDV statistics of examples with these categories."""
  frame = pd.DataFrame({'segment_category': categories,
                        'num_segments': [len(c) for c in categories]})
  statistics = tfdv.generate_statistics_from_dataframe(
      frame, stats_options=tfdv.StatsOptions(
          schema=text_format.Parse(_SCHEMA, schema_pb2.Schema())), n_jobs=1)
  path = directory / 'Split-train' / 'FeatureStats.pb'
  path.parent.mkdir(parents=True)
  path.write_bytes(statistics.SerializeToString())
  return str(path)


@pytest.fixture(scope='module')
def statistics(tmp_path_factory) -> Dict[str, str]:
  root = tmp_path_factory.mktemp('statistics')
  return {
      # Baseline: person (1) most frequent, then bus (6), sky (187).
      'baseline': _write_statistics(root / 'baseline', [
          [1, 1, 6], [1, 187], [1, 6, 187], [1, 1]]),
      # This span: every person became a car (3).
      'this': _write_statistics(root / 'this', [
          [3, 3, 6], [3, 187], [3, 6, 187], [3, 3]]),
  }


def _run(tmp_path: pathlib.Path, drift: Optional[Dict[str, Any]],
         failed_node: Optional[str] = None,
         text: Optional[str] = None) -> run_record.PipelineRun:
  uri = tmp_path / 'DriftValidator' / 'drift' / '9'
  uri.mkdir(parents=True)
  (uri / drift_section.DRIFT_FILE).write_text(
      text if text is not None else json.dumps(drift))
  nodes = {'DriftValidator': run_record.NodeRun(
      'DriftValidator', 'COMPLETE', {}, {}, {'drift': [
          run_record.ArtifactRecord(1, 'tfx_pipeline.DriftReport', str(uri),
                                    {})]})}
  if failed_node:
    nodes[failed_node] = run_record.NodeRun(failed_node, 'FAILED', {}, {}, {})
  return run_record.PipelineRun(
      pipeline_root=str(tmp_path), pipeline_name='maskformer-tfx',
      run_id='run-2', started=None, nodes=nodes)


def _drift(statistics, drifted=True, allow_drift=False, baseline=True):
  features = [
      {'feature': 'segment_category', 'comparator':
       'jensen_shannon_divergence', 'distance': 0.31, 'threshold': 0.1,
       'drifted': drifted},
      {'feature': 'num_segments', 'comparator': 'jensen_shannon_divergence',
       'distance': 0.0, 'threshold': 0.1, 'drifted': False}]
  return {
      'baseline_model': BASELINE_MODEL if baseline else None,
      'baseline_statistics': statistics['baseline'] if baseline else None,
      'statistics': statistics['this'], 'span': 2,
      'allow_drift': allow_drift, 'drifted': drifted,
      'features': features if baseline else [],
      'message': (f'Data drift against the data of blessed model '
                  f"{BASELINE_MODEL}: 'segment_category' Jensen-Shannon 0.31 "
                  '> 0.10' if drifted else '')}


class _Bars(html.parser.HTMLParser):
  """{(category value, series): fraction} of the drift bars; table rows."""

  def __init__(self):
    super().__init__()
    self.bars: Dict[tuple, float] = {}
    self.rows: Dict[str, Dict[str, str]] = {}
    self._value = None

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'g' and 'data-value' in attrs:
      self._value = attrs['data-value']
    elif tag == 'rect' and 'data-series' in attrs:
      self.bars[(self._value, attrs['data-series'])] = float(
          attrs['data-fraction'])
    elif tag == 'tr' and 'data-feature' in attrs:
      self.rows[attrs['data-feature']] = attrs


def _parse(section: str) -> _Bars:
  parser = _Bars()
  parser.feed(section)
  return parser


def test_drifted_span_shows_distances_and_paired_category_bars(
    statistics, tmp_path):
  section = drift_section.drift_section(_run(
      tmp_path, _drift(statistics), failed_node='DriftGate'))
  assert 'not available' not in section
  assert 'id="drift-verdict">DRIFTED</b>' in section
  assert BASELINE_MODEL in section
  assert 'The run stopped at DriftGate, before the Trainer.' in section
  assert 'Jensen-Shannon 0.31 &gt; 0.10' in section  # The message.
  parsed = _parse(section)
  assert parsed.rows['segment_category']['data-drifted'] == 'true'
  assert parsed.rows['segment_category']['class'] == 'bad'
  assert parsed.rows['num_segments']['data-drifted'] == 'false'
  assert '0.3100 &gt; 0.1000' in section and '0.0000 ≤ 0.1000' in section
  # 10 segments each: person 6/10 -> 0 and car 0 -> 6/10, the rest equal.
  assert parsed.bars[('1', 'baseline')] == pytest.approx(0.6, abs=1e-6)
  assert parsed.bars[('1', 'this span')] == 0.0
  assert parsed.bars[('3', 'this span')] == pytest.approx(0.6, abs=1e-6)
  assert parsed.bars[('3', 'baseline')] == 0.0
  for category, count in (('6', 2), ('187', 2)):
    for series in ('this span', 'baseline'):
      assert parsed.bars[(category, series)] == pytest.approx(
          count / 10, abs=1e-6)
  assert 'person (1)' in section and 'car (3)' in section
  assert statistics['baseline'] in section and statistics['this'] in section


def test_allowed_drift_is_flagged(statistics, tmp_path):
  section = drift_section.drift_section(_run(
      tmp_path, _drift(statistics, allow_drift=True)))
  assert 'id="drift-verdict">ALLOWED (--allow-drift)</b>' in section
  assert 'trained anyway' in section


def test_no_drift_names_the_baseline(statistics, tmp_path):
  section = drift_section.drift_section(_run(
      tmp_path, _drift(statistics, drifted=False)))
  assert (f'id="drift-verdict">NO DRIFT</b> against the data of blessed model'
          f' <code>{BASELINE_MODEL}</code>') in section
  assert _parse(section).rows['segment_category']['data-drifted'] == 'false'


def test_first_run_has_no_baseline(statistics, tmp_path):
  section = drift_section.drift_section(_run(
      tmp_path, _drift(statistics, drifted=False, baseline=False)))
  assert 'no baseline (first run)' in section
  bars = _parse(section).bars
  assert {series for _, series in bars} == {'this span'}
  assert bars[('3', 'this span')] == pytest.approx(0.6, abs=1e-6)
  assert 'no baseline statistics' in section


def test_a_bad_drift_file_is_named(tmp_path):
  section = drift_section.drift_section(_run(tmp_path, None,
                                             text='{"features": 3}'))
  assert 'not available' in section
  assert str(tmp_path / 'DriftValidator' / 'drift' / '9' / 'drift.json') in (
      section)
  assert 'no &quot;features&quot; list' in section


def test_the_page_has_a_drift_section_and_says_why_when_absent(
    statistics, tmp_path):
  with_drift = page.build_report_html(_run(tmp_path, _drift(statistics)))
  assert '<section id="drift"><h2>Drift</h2>' in with_drift
  assert '<svg class="drift-bars"' in with_drift
  assert '<script' not in with_drift
  without = page.build_report_html(run_record.PipelineRun(
      pipeline_root=None, pipeline_name='p', run_id='', started=None,
      nodes={}))
  drift_part = without.split('<section id="drift">')[1].split('</section>')[0]
  assert 'not available: DriftValidator is not part of this run' in drift_part
