"""Tests of the content fingerprint that keys resumable training runs."""

import pathlib
from typing import List, Sequence

import tensorflow as tf

from trainer_module import training_checkpoints


def _examples(count: int) -> List[tf.train.Example]:
  examples = []
  for index in range(count):
    example = tf.train.Example()
    features = example.features.feature
    features['image'].bytes_list.value.append(b'pixels %d' % index)
    features['segment_classes'].int64_list.value.extend([index, 7, 0])
    features['segment_map'].int64_list.value.extend([0, 1, 1, index])
    features['source_id'].bytes_list.value.append(b'%d' % index)
    examples.append(example)
  return examples


def _serialized_in_key_order(example: tf.train.Example,
                             reverse: bool) -> bytes:
  """`example` serialized with its feature map entries in sorted (or
  reverse sorted) key order: serialized messages concatenate to their
  merge, so one single-entry Example per feature parses back to `example`.
  (Serializing a map field orders its entries as the protobuf runtime likes,
  which differs between processes.)"""
  parts = []
  for key in sorted(example.features.feature, reverse=reverse):
    entry = tf.train.Example()
    entry.features.feature[key].CopyFrom(example.features.feature[key])
    parts.append(entry.SerializeToString())
  return b''.join(parts)


def _write(path: pathlib.Path, records: Sequence[bytes]) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with tf.io.TFRecordWriter(str(path), options='GZIP') as writer:
    for record in records:
      writer.write(record)


def test_fingerprint_is_the_examples_content_not_their_bytes(tmp_path):
  examples = _examples(6)
  _write(tmp_path / 'a' / 'part-0.gz',
         [_serialized_in_key_order(e, reverse=False) for e in examples])
  # What a rerun of Transform writes: the same records, each with another
  # byte order of its feature map, in another order and in two files.
  rewritten = [_serialized_in_key_order(e, reverse=True)
               for e in reversed(examples)]
  assert rewritten[-1] != _serialized_in_key_order(examples[0], reverse=False)
  assert tf.train.Example.FromString(rewritten[-1]) == examples[0]
  _write(tmp_path / 'b' / 'part-0.gz', rewritten[:2])
  _write(tmp_path / 'b' / 'part-1.gz', rewritten[2:])
  # Other content: one value changed, one record missing, a file twice.
  changed = _examples(6)
  changed[3].features.feature['segment_classes'].int64_list.value[1] = 8
  _write(tmp_path / 'c' / 'part-0.gz',
         [e.SerializeToString() for e in changed])
  _write(tmp_path / 'd' / 'part-0.gz',
         [e.SerializeToString() for e in examples[:5]])

  def fingerprint(*patterns):
    return training_checkpoints.examples_fingerprint(
        [str(tmp_path / pattern) for pattern in patterns])

  base = fingerprint('a/*')
  assert base[0] == 6
  assert fingerprint('b/*') == base
  assert fingerprint('b/part-1.gz', 'b/part-0.gz') == base
  for other in (fingerprint('c/*'), fingerprint('d/*'),
                fingerprint('a/*', 'a/*')):
    assert other != base
  assert fingerprint('missing/*') == [0, f'{0:064x}']


def test_inputs_fingerprint_follows_the_transform_graph_content(tmp_path):
  _write(tmp_path / 'examples' / 'part-0.gz',
         [e.SerializeToString() for e in _examples(2)])
  examples = [str(tmp_path / 'examples' / '*')]
  graphs = []
  for name, content in (('g1', b'graph'), ('g2', b'graph'),
                        ('g3', b'other graph')):
    (tmp_path / name / 'transform_fn').mkdir(parents=True)
    (tmp_path / name / 'transform_fn' / 'saved_model.pb').write_bytes(content)
    graphs.append(training_checkpoints.inputs_fingerprint(
        examples, examples, str(tmp_path / name)))
  assert graphs[0] == graphs[1] != graphs[2]


def test_resumption_is_reported_as_a_progress_line(caplog):
  with caplog.at_level('INFO', logger='maskformer_tfx.progress'):
    training_checkpoints.report_resumption('/ckpt/maskformer_tiny-0123/ckpt-250')
  assert [r.getMessage() for r in caplog.records] == [
      'resuming from step 250 (checkpoint '
      '/ckpt/maskformer_tiny-0123/ckpt-250)']
