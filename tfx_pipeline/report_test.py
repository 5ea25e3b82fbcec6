"""Tests of the review report on a real pipeline run that stops at the gate,
and of its pure helpers on small inputs."""

import argparse
import html.parser
import pathlib
import sqlite3
from typing import Dict, List

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_analysis as tfma
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from schemas import RAW_SCHEMA_FILE, load_categories, schema_path
from tfx_pipeline import evaluation
from tfx_pipeline import report

# The shared gate_stopped_run fixture's sample (root conftest.py).
NUM_TRAIN, NUM_EVAL = 6, 3


class _PageParser(html.parser.HTMLParser):
  """Text of each <section id=...> and every <img src> / <a href>."""

  def __init__(self):
    super().__init__()
    self.sections: Dict[str, List[str]] = {}
    self.headings: List[str] = []
    self.links: List[str] = []
    self._section = None
    self._in_h2 = False

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag == 'section':
      self._section = attrs['id']
      self.sections[self._section] = []
    elif tag == 'h2':
      self._in_h2 = True
    for name in ('src', 'href'):
      if name in attrs:
        self.links.append(attrs[name])

  def handle_endtag(self, tag):
    if tag == 'section':
      self._section = None
    elif tag == 'h2':
      self._in_h2 = False

  def handle_data(self, data):
    if self._in_h2:
      self.headings.append(data)
    if self._section:
      self.sections[self._section].append(data)


def _parse(page: str) -> _PageParser:
  parser = _PageParser()
  parser.feed(page)
  return parser


def _text(parser: _PageParser, section: str) -> str:
  return ' '.join(' '.join(parser.sections[section]).split())


@pytest.fixture(scope='module')
def gate_stopped_root(gate_stopped_run) -> pathlib.Path:
  """Pipeline root of a `maskformer-tfx run` whose eval split has FLOAT
  image/height (and other bad records): it stops at DataValidationGate."""
  root, result = gate_stopped_run
  assert result.returncode == 1, result.stdout + result.stderr
  assert 'ExampleValidator finished' in result.stdout
  assert 'DataValidationGate finished' not in result.stdout
  return root


@pytest.fixture(scope='module')
def page_html(gate_stopped_root) -> str:
  path = report.write_report(str(gate_stopped_root))
  return pathlib.Path(path).read_text(encoding='utf-8')


@pytest.fixture(scope='module')
def page(page_html) -> _PageParser:
  return _parse(page_html)


def _run_ids(pipeline_root: pathlib.Path) -> List[str]:
  """Run ids straight from the ML Metadata tables (not through the report)."""
  with sqlite3.connect(pipeline_root / 'metadata.sqlite') as connection:
    rows = connection.execute(
        'SELECT Context.name FROM Context JOIN Type ON Context.type_id = '
        "Type.id WHERE Type.name = 'pipeline_run' ORDER BY Context.id")
    return [row[0] for row in rows]


def test_page_has_every_section_and_names_the_run(gate_stopped_root, page):
  assert page.headings == [title for _, title in report.SECTIONS]
  run_ids = _run_ids(gate_stopped_root)
  assert len(run_ids) == 1
  provenance = _text(page, 'provenance')
  assert f'Run id {run_ids[0]}' in provenance
  assert 'Pipeline maskformer-tfx' in provenance
  for package in ('tfx', 'tensorflow', 'tf-models-official', 'apache-beam',
                  'tensorflow-data-validation', 'tensorflow-model-analysis',
                  'tensorflow-transform'):
    assert f' {package} ' in f' {provenance} '


def test_provenance_lists_every_artifact_uri_of_the_run(gate_stopped_root,
                                                       page):
  with sqlite3.connect(gate_stopped_root / 'metadata.sqlite') as connection:
    uris = [row[0] for row in connection.execute('SELECT uri FROM Artifact')]
  assert len(uris) == 4  # examples, schema, statistics, anomalies.
  provenance = _text(page, 'provenance')
  for uri in uris:
    assert uri in provenance


def test_statistics_count_the_written_examples(page):
  data = _text(page, 'data')
  assert f'train ({NUM_TRAIN} examples)' in data
  assert f'eval ({NUM_EVAL} examples)' in data
  assert 'not available' not in data


def test_schema_table_lists_every_schema_feature(page):
  schema = text_format.Parse(
      pathlib.Path(schema_path(RAW_SCHEMA_FILE)).read_text(),
      schema_pb2.Schema())
  data = _text(page, 'data')
  schema_part = data[data.index('Schema in use'):data.index('Anomalies')]
  for feature in schema.feature:
    assert f' {feature.name} {schema_pb2.FeatureType.Name(feature.type)} ' in (
        schema_part)


def test_anomalies_name_the_bad_feature_and_the_failed_gate(page):
  data = _text(page, 'data')
  anomalies = data[data.index('Anomalies'):]
  assert 'DataValidationGate: FAILED' in anomalies
  assert ("split 'eval': feature 'image/height'" in anomalies
          and 'Expected data of type: INT but got FLOAT' in anomalies)
  assert "split 'train'" not in anomalies
  assert 'INT (train), FLOAT (eval)' in data


@pytest.mark.parametrize('section', ['quality', 'training', 'examples'])
def test_downstream_sections_say_the_run_stopped_at_the_gate(page, section):
  text = _text(page, section)
  assert 'not available:' in text
  assert 'the run stopped when DataValidationGate failed' in text


def test_header_names_the_failed_component_and_its_error(page_html):
  header = page_html[page_html.index('<header>'):page_html.index('</header>')]
  assert 'The run failed at DataValidationGate' in header
  assert 'DataValidationError: Data validation failed' in header
  assert 'image/height' in header


def test_page_loads_nothing_from_the_network(page):
  assert page.links, 'the page should have charts and navigation'
  for link in page.links:
    assert link.startswith(('data:image/png;base64,', '#')), link[:80]


def test_unknown_run_id_is_an_error(gate_stopped_root):
  with pytest.raises(report.ReportError, match='No run'):
    report.write_report(str(gate_stopped_root), run_id='no-such-run')


def test_report_subcommand_writes_the_named_run(gate_stopped_root, tmp_path,
                                                capsys):
  parser = argparse.ArgumentParser()
  report.add_report_parser(parser.add_subparsers(dest='command'))
  run_id = _run_ids(gate_stopped_root)[0]
  output = tmp_path / 'page.html'
  args = parser.parse_args(['report', str(gate_stopped_root), '--run', run_id,
                            '--output', str(output), '--num-examples', '4'])
  assert args.handler(args) == 0
  assert f'Review report: {output}' in capsys.readouterr().out
  assert f'run {run_id}' in output.read_text(encoding='utf-8')

  args = parser.parse_args(['report', str(gate_stopped_root), '--list-runs'])
  assert args.handler(args) == 0
  assert capsys.readouterr().out.startswith(f'{run_id}\t')

  args = parser.parse_args(['report', str(tmp_path / 'no_root')])
  assert args.handler(args) == 1
  assert 'No ML Metadata' in capsys.readouterr().err


def test_read_scalar_summaries_returns_what_was_written(tmp_path):
  written = {'train': {'total_loss': [(1, 3.0), (2, 2.5)],
                       'learning_rate': [(1, 1e-4), (2, 5e-5)]},
             'validation': {'pq': [(2, 0.125)]}}
  for subdir, tags in written.items():
    writer = tf.summary.create_file_writer(str(tmp_path / subdir))
    with writer.as_default():
      for tag, points in tags.items():
        for step, value in points:
          tf.summary.scalar(tag, value, step=step)
      tf.summary.text('note', 'not a scalar', step=1)
    writer.close()
  series = report.read_scalar_summaries(str(tmp_path))
  assert set(series) == set(written)
  for subdir, tags in written.items():
    assert set(series[subdir]) == set(tags)
    for tag, points in tags.items():
      steps, values = zip(*series[subdir][tag])
      assert list(steps) == [step for step, _ in points]
      np.testing.assert_allclose(values, [value for _, value in points],
                                 rtol=1e-6)


def test_segment_colours_separate_segments_and_leave_void_black():
  colours = {int(c['id']): tuple(c['color']) for c in load_categories()}
  category = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [1, 1, 1, 1],
                       [184, 184, 184, 184]])
  instance = np.array([[0, 0, 1, 1],
                       [0, 0, 1, 1],
                       [2, 2, 1, 1],
                       [0, 0, 0, 0]])
  colour, boundary = report.segment_colours(category, instance, colours)
  segments = {}
  for y in range(4):
    for x in range(4):
      segments.setdefault((category[y, x], instance[y, x]), set()).add(
          tuple(colour[y, x]))
  assert all(len(pixel_colours) == 1 for pixel_colours in segments.values())
  assert len({next(iter(c)) for c in segments.values()}) == len(segments)
  assert segments[(0, 0)] == {(0, 0, 0)}
  assert segments[(184, 0)] == {colours[184]}
  # A pixel is on a boundary iff a 4-neighbour is in another segment.
  ids = category * 10 + instance
  padded = np.pad(ids, 1, mode='edge')
  expected = ((padded[1:-1, 1:-1] != padded[:-2, 1:-1]) |
              (padded[1:-1, 1:-1] != padded[2:, 1:-1]) |
              (padded[1:-1, 1:-1] != padded[1:-1, :-2]) |
              (padded[1:-1, 1:-1] != padded[1:-1, 2:]))
  np.testing.assert_array_equal(boundary, expected)


def test_prediction_at_image_size_crops_the_padding_and_resizes():
  rng = np.random.default_rng(0)
  valid_map = rng.integers(0, 5, (4, 6))
  mask = np.zeros((8, 8), np.int32)
  mask[:4, :6] = valid_map
  mask[4:, :] = 99  # Padding below and right of the image.
  mask[:, 6:] = 99
  pixel_valid = np.zeros((8, 8), np.int32)
  pixel_valid[:4, :6] = 1
  resized = report.prediction_at_image_size(mask, pixel_valid, (12, 18))
  np.testing.assert_array_equal(resized,
                                np.repeat(np.repeat(valid_map, 3, 0), 3, 1))


def test_threshold_lines_state_the_eval_config_bounds():
  lines = report.threshold_lines(evaluation.eval_config(0.3, 0.001))
  assert 'pq ≥ 0.3' in lines
  assert any(line.startswith('pq (candidate) − pq (baseline) ≥ -0.001')
             for line in lines)
  assert len(lines) == 2


def test_threshold_lines_read_metrics_spec_thresholds_too():
  config = tfma.EvalConfig(metrics_specs=[tfma.MetricsSpec(
      metrics=[tfma.MetricConfig(class_name='ExampleCount')],
      thresholds={'example_count': tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(
              lower_bound={'value': 2}, upper_bound={'value': 10}))})])
  assert report.threshold_lines(config) == ['example_count ≥ 2',
                                            'example_count ≤ 10']


def test_overlay_keeps_void_pixels_and_tints_segments():
  image = np.full((3, 5, 3), 100, np.uint8)
  category = np.zeros((3, 5), np.int64)
  category[:, 2:] = 1
  blended = report.overlay(image, category, np.zeros_like(category),
                           {1: (255, 0, 0)})
  # Void (columns 0, 1) keeps the image except on the boundary (column 1);
  # the segment is tinted inside and white on its boundary (column 2).
  np.testing.assert_array_equal(blended[:, 0], np.full((3, 3), 100))
  np.testing.assert_array_equal(blended[:, 1:3], np.full((3, 2, 3), 255))
  alpha = report.SEGMENT_OVERLAY_ALPHA
  tinted = np.floor(100 * (1 - alpha) + np.array([255, 0, 0]) * alpha)
  np.testing.assert_allclose(blended[:, 3:], np.broadcast_to(tinted, (3, 2, 3)),
                             atol=1)


def test_per_class_pq_is_sorted_and_named_from_the_category_file():
  categories = load_categories()
  rng = np.random.default_rng(1)
  values = {f'pq_class_{c["id"]}': float(rng.choice([0.0, 0.25, 0.5, 0.9]))
            for c in categories}
  rows = report.per_class_pq({**values, 'pq': 0.4, 'sq_things': 0.7})
  expected = sorted(
      ((c['name'], c['isthing'] == 1, values[f'pq_class_{c["id"]}'])
       for c in categories), key=lambda row: (-row[2], row[0]))
  assert rows == expected


def test_quality_table_shows_baseline_and_difference():
  candidate = {'pq': 0.4, 'sq': 0.75, 'rq': 0.5, 'pq_things': 0.3,
               'sq_things': 0.7, 'rq_things': 0.4, 'pq_stuff': 0.5,
               'sq_stuff': 0.8, 'rq_stuff': 0.6}
  baseline = {name: value - 0.0625 for name, value in candidate.items()}
  parsed = _parse('<section id="quality">'
                  + report.quality_table(candidate, baseline)
                  + '</section>')
  text = _text(parsed, 'quality')
  for name, value in candidate.items():
    assert f'{value:.4f} baseline {baseline[name]:.4f}, Δ +0.0625' in text
  # It says which PQ it is: the gate's, not COCO's.
  assert "gate's PQ" in text and 'crowd regions are void' in text
  assert 'evaluate-coco' in text
