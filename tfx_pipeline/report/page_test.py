"""The review page of a real pipeline run that stops at the data gate, read
from the pipeline root's ML Metadata (`maskformer-tfx report`)."""

import html.parser
import pathlib
import sqlite3
from typing import Dict, List

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from runners import cli
from schemas import RAW_SCHEMA_FILE, schema_path
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
  # Examples, schema, drift schema, statistics, anomalies.
  assert len(uris) == 5
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
  parser = cli.build_parser()
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
