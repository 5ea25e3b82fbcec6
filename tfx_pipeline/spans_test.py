"""Split patterns with {SPAN}: checks, the span a run reads, clear errors."""

import pytest

from tfx_pipeline import spans

TRAIN, EVAL = 'span-{SPAN}/train-*', 'span-{SPAN}/val-*'


def _write_spans(root, numbers, splits=('train', 'val')):
  for number in numbers:
    for split in splits:
      directory = root / f'span-{number}'
      directory.mkdir(exist_ok=True)
      (directory / f'{split}-00000-of-00001.tfrecord').write_bytes(b'')


def test_plain_patterns_are_read_as_they_are(tmp_path):
  assert spans.resolve(str(tmp_path), 'train-*', 'val-*') == (
      None, ['train-*', 'val-*'])
  assert spans.range_config(None) is None


def test_the_latest_span_of_both_splits_is_read(tmp_path):
  _write_spans(tmp_path, (1, 2, 10))
  assert spans.resolve(str(tmp_path), TRAIN, EVAL) == (
      10, ['span-10/train-*', 'span-10/val-*'])


def test_span_n_reads_that_span(tmp_path):
  _write_spans(tmp_path, (1, 2))
  assert spans.resolve(str(tmp_path), TRAIN, EVAL, span=1) == (
      1, ['span-1/train-*', 'span-1/val-*'])
  static = spans.range_config(1).static_range
  assert (static.start_span_number, static.end_span_number) == (1, 1)


def test_a_zero_padded_span_keeps_its_width(tmp_path):
  (tmp_path / 'train-003.tfrecord').write_bytes(b'')
  (tmp_path / 'val-003.tfrecord').write_bytes(b'')
  assert spans.resolve(str(tmp_path), 'train-{SPAN:3}.tfrecord',
                       'val-{SPAN:3}.tfrecord') == (
                           3, ['train-003.tfrecord', 'val-003.tfrecord'])


def test_a_pattern_matching_no_span_names_the_pattern_and_data_root(tmp_path):
  (tmp_path / 'train-00000-of-00001.tfrecord').write_bytes(b'')
  with pytest.raises(spans.SpanError) as error:
    spans.resolve(str(tmp_path), TRAIN, EVAL)
  assert str(error.value) == (
      f"--train-pattern 'span-{{SPAN}}/train-*' matches no span under the "
      f'data root {tmp_path}: no file there has a span number where the '
      'pattern has {SPAN}.')


def test_a_missing_span_n_names_the_latest_span_there(tmp_path):
  _write_spans(tmp_path, (1, 2))
  with pytest.raises(spans.SpanError) as error:
    spans.resolve(str(tmp_path), TRAIN, EVAL, span=3)
  message = str(error.value)
  assert message.startswith("--span 3: --train-pattern 'span-{SPAN}/train-*' "
                            'matches no file of span 3')
  assert f'under the data root {tmp_path}' in message
  assert 'the latest span there is 2' in message


def test_splits_whose_latest_spans_differ_are_refused(tmp_path):
  _write_spans(tmp_path, (1,))
  _write_spans(tmp_path, (2,), splits=('train',))
  with pytest.raises(spans.SpanError, match='latest span of --train-pattern '
                     r".*is 2 but that of --eval-pattern .*is 1"):
    spans.resolve(str(tmp_path), TRAIN, EVAL)
  # One span both splits have is readable.
  assert spans.resolve(str(tmp_path), TRAIN, EVAL, span=1)[0] == 1


@pytest.mark.parametrize('train,eval_,span,expected', [
    ('train-*', 'val-*', 1,
     "--span 1 selects one span of split patterns with {SPAN}, but "
     "--train-pattern 'train-*' and --eval-pattern 'val-*' name no span"),
    (TRAIN, 'val-*', None,
     'either both split patterns name the span with {SPAN} or neither'),
    (TRAIN, EVAL, -1, '--span -1: a span number is at least 0.'),
    ('s-{SPAN}/train-{SPAN}', EVAL, None,
     "--train-pattern 's-{SPAN}/train-{SPAN}': Only one {SPAN} is allowed"),
])
def test_flags_that_cannot_work_together_are_refused(train, eval_, span,
                                                     expected):
  with pytest.raises(spans.SpanError) as error:
    spans.check_patterns(train, eval_, span)
  assert expected in str(error.value)
