"""Spans: snapshots of the data that ImportExampleGen tells apart by number.

A split pattern with `{SPAN}` (or `{SPAN:W}`, zero-padded to W digits), e.g.
`span-{SPAN}/train-*`, matches every span of the data; ImportExampleGen reads
the latest one (the highest number matched by every split) or, with a static
`RangeConfig`, the one span it names, and records the span number on its
Examples artifact (`span` property) in ML Metadata. Plain patterns are one
unnumbered snapshot, which TFX records as span 0.

`check_patterns` checks the split patterns with the span selection (names
the flags); `resolve` finds the span a run reads before the pipeline starts,
with TFX's own matching (`tfx.components.example_gen.utils`), so that a
pattern matching no span stops the run naming the pattern and the data root.
"""

import copy
import re
from typing import List, Optional, Sequence, Tuple

SPAN_FLAG = '--span'
_PATTERN_FLAGS = ('--train-pattern', '--eval-pattern')


class SpanError(ValueError):
  """Split patterns or a span that cannot be read (the message says why)."""


def uses_spans(pattern: str) -> bool:
  """Whether a split pattern names a span ({SPAN} or {SPAN:W})."""
  from tfx.components.example_gen import utils
  return bool(re.search(utils.SPAN_FULL_REGEX, pattern))


def _named(patterns: Sequence[str]) -> str:
  return ' and '.join(f'{flag} {pattern!r}'
                      for flag, pattern in zip(_PATTERN_FLAGS, patterns))


def check_patterns(train_pattern: str, eval_pattern: str,
                   span: Optional[int]) -> None:
  """Checks the split patterns and the span selection.

  Both patterns name a span or neither does (ImportExampleGen reads one span
  for all splits); `span` needs patterns that name one.

  Raises:
    SpanError: naming the flags and the patterns.
  """
  from tfx.components.example_gen import utils
  patterns = (train_pattern, eval_pattern)
  for flag, split in zip(_PATTERN_FLAGS, input_config(*patterns).splits):
    try:
      utils.verify_split_pattern_specs(split)
    except ValueError as error:
      raise SpanError(f'{flag} {split.pattern!r}: {error}.') from None
  with_span = [uses_spans(pattern) for pattern in patterns]
  if any(with_span) and not all(with_span):
    raise SpanError(
        f'{_named(patterns)}: either both split patterns name the span with '
        '{SPAN} or neither does (ImportExampleGen reads one span for every '
        'split).')
  if span is None:
    return
  if not all(with_span):
    raise SpanError(
        f'{SPAN_FLAG} {span} selects one span of split patterns with {{SPAN}}, '
        f'but {_named(patterns)} name no span (e.g. --train-pattern '
        "'span-{SPAN}/train-*' --eval-pattern 'span-{SPAN}/val-*').")
  if span < 0:
    raise SpanError(f'{SPAN_FLAG} {span}: a span number is at least 0.')


def input_config(train_pattern: str, eval_pattern: str):
  """ImportExampleGen's `Input` of the train and eval split patterns."""
  from tfx.proto import example_gen_pb2
  return example_gen_pb2.Input(splits=[
      example_gen_pb2.Input.Split(name='train', pattern=train_pattern),
      example_gen_pb2.Input.Split(name='eval', pattern=eval_pattern),
  ])


def range_config(span: Optional[int]):
  """ImportExampleGen's static range of one span; None: the latest span."""
  if span is None:
    return None
  from tfx.proto import range_config_pb2
  return range_config_pb2.RangeConfig(
      static_range=range_config_pb2.StaticRange(start_span_number=span,
                                                end_span_number=span))


def _span_of(data_root: str, split, span: Optional[int]
             ) -> Tuple[Optional[int], str]:
  """(the span ImportExampleGen picks for one split, its pattern with the
  span filled in); (None, '') when the pattern matches no such span."""
  from tfx.components.example_gen import utils
  split = copy.deepcopy(split)
  try:
    _, selected, _ = utils.calculate_splits_fingerprint_span_and_version(
        data_root, [split], range_config(span))
  except ValueError:
    return None, ''
  return selected, split.pattern


def resolve(data_root: str, train_pattern: str, eval_pattern: str,
            span: Optional[int] = None) -> Tuple[Optional[int], List[str]]:
  """The span a run reads and the split patterns with it filled in.

  Args:
    data_root: the directory (local or gs://) the patterns are under.
    train_pattern: the train split's pattern.
    eval_pattern: the eval split's pattern.
    span: the span to read; None: the latest span of both splits.

  Returns:
    (span, [train pattern, eval pattern] of that span); (None, the patterns
    unchanged) for patterns without {SPAN}.

  Raises:
    SpanError: the patterns match no (such) span under `data_root`, or the
      splits' latest spans differ; the message names the patterns and the
      data root.
  """
  check_patterns(train_pattern, eval_pattern, span)
  patterns = [train_pattern, eval_pattern]
  if not uses_spans(train_pattern):
    return None, patterns
  splits = input_config(*patterns).splits
  found = [_span_of(data_root, split, span) for split in splits]
  for index, (selected, _) in enumerate(found):
    flag, pattern = _PATTERN_FLAGS[index], patterns[index]
    if selected is not None:
      continue
    if span is None:
      raise SpanError(
          f'{flag} {pattern!r} matches no span under the data root '
          f'{data_root}: no file there has a span number where the pattern '
          'has {SPAN}.')
    latest, _ = _span_of(data_root, splits[index], None)
    there = (f'the latest span there is {latest}' if latest is not None else
             'it matches no span there at all')
    raise SpanError(
        f'{SPAN_FLAG} {span}: {flag} {pattern!r} matches no file of span '
        f'{span} under the data root {data_root} ({there}).')
  spans = [selected for selected, _ in found]
  if spans[0] != spans[1]:
    raise SpanError(
        f'The latest span of {_PATTERN_FLAGS[0]} {train_pattern!r} is '
        f'{spans[0]} but that of {_PATTERN_FLAGS[1]} {eval_pattern!r} is '
        f'{spans[1]} under the data root {data_root}: ImportExampleGen reads '
        f'one span for every split (give {SPAN_FLAG} N to read span N).')
  return spans[0], [resolved for _, resolved in found]
