"""Spans on real components: `validate` (LocalDagRunner, SQLite ML Metadata,
Beam DirectRunner) of data in two spans reads the latest span by default and
span N with --span N; ML Metadata, the terminal summary and the review report
name the span read."""

import pathlib
import re
import shutil

from panoptic_data import sample_data
from tests.pipeline_helpers import latest_execution_artifacts
from tests.pipeline_helpers import metadata_store
from tests.pipeline_helpers import run_cli

PATTERNS = ['--train-pattern', 'span-{SPAN}/train-*',
            '--eval-pattern', 'span-{SPAN}/val-*']


def _write_span(data: pathlib.Path, span: int, num_train: int,
                work: pathlib.Path) -> None:
  records = sample_data.make_sample_tfrecords(
      work / f'sample-{span}', num_train=num_train, num_val=1, image_size=64,
      seed=span)
  shutil.copytree(records, data / f'span-{span}')


def _examples_read(root: pathlib.Path):
  """(span property, train example count) of the latest Examples artifact."""
  uri = latest_execution_artifacts(root, 'ImportExampleGen')[
      'output:examples'][0]
  artifact, = metadata_store(root).get_artifacts_by_uri(uri)
  # IR-based runners record the Examples' span as a custom property.
  span = artifact.custom_properties['span'].int_value
  statistics_uri = latest_execution_artifacts(root, 'StatisticsGen')[
      'output:statistics'][0]
  from tfx_pipeline.report import data_section
  train = data_section.load_statistics(statistics_uri)['train']
  return span, train.num_examples


def test_validate_reads_the_latest_span_or_the_one_given(tmp_path):
  data = tmp_path / 'data'
  # Span 1 has 3 train images, span 2 has 2: the counts tell them apart.
  _write_span(data, 1, 3, tmp_path)
  _write_span(data, 2, 2, tmp_path)
  root = tmp_path / 'root'
  runs = {}
  for label, extra in (('latest', []), ('span 1', ['--span', '1'])):
    result = run_cli(['validate', '--data', str(data), '--pipeline-root',
                      str(root), *PATTERNS, *extra])
    assert result.returncode == 0, result.stderr
    runs[label] = result.stdout, _examples_read(root)

  stdout, (span, train_examples) = runs['latest']
  assert (span, train_examples) == (2, 2)
  assert 'Span:          2 (the latest)' in stdout
  assert re.search(r'^Span: 2 \(ML Metadata, Examples artifact \d+: ', stdout,
                   re.M), stdout
  report = re.search(r'^Review report: (\S+)$', stdout, re.M).group(1)
  assert 'Span <b>2</b>: the <code>span</code> property' in (
      pathlib.Path(report).read_text())

  stdout, (span, train_examples) = runs['span 1']
  assert (span, train_examples) == (1, 3)
  assert 'Span:          1 (--span)' in stdout
  assert re.search(r'^Span: 1 \(ML Metadata', stdout, re.M), stdout


def test_a_pattern_matching_no_span_stops_before_the_pipeline(tmp_path):
  data = tmp_path / 'data'
  data.mkdir()
  root = tmp_path / 'root'
  result = run_cli(['validate', '--data', str(data), '--pipeline-root',
                    str(root), *PATTERNS])
  assert result.returncode == 1
  assert result.stderr.strip() == (
      "maskformer-tfx validate stopped: --train-pattern 'span-{SPAN}/train-*' "
      f'matches no span under the data root {data}: no file there has a span '
      'number where the pattern has {SPAN}.')
  assert not (root / 'metadata.sqlite').exists()


def test_span_without_a_span_pattern_is_refused_naming_the_flag(tmp_path):
  result = run_cli(['validate', '--data', str(tmp_path), '--pipeline-root',
                    str(tmp_path / 'root'), '--span', '3'])
  assert result.returncode == 1
  assert ("stopped: --span 3 selects one span of split patterns with {SPAN}, "
          "but --train-pattern 'train-*' and --eval-pattern 'val-*' name no "
          'span') in result.stderr
  assert 'Traceback' not in result.stdout + result.stderr
