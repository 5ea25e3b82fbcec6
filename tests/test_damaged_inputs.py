"""`maskformer-tfx validate` on damaged input files: one paragraph naming the
file (and the record), no traceback or bytes on the terminal, the detail in
the run's log, and no component started."""

import gzip
import pathlib
import re

import pytest
import tensorflow as tf

from runners import cli


def _write_records(path: pathlib.Path, count: int = 3) -> bytes:
  with tf.io.TFRecordWriter(str(path)) as writer:
    for index in range(count):
      writer.write(bytes([index]) * 4000)
  return path.read_bytes()


def _cut_short(data: bytes) -> bytes:
  return data[:-100]


def _flipped_data_crc(data: bytes) -> bytes:
  damaged = bytearray(data)
  damaged[2 * 4016 - 1] ^= 0xff  # The data checksum of record 2.
  return bytes(damaged)


def _text(data: bytes) -> bytes:
  del data
  return b'this is a list of files, not a TFRecord\n' * 50


DAMAGES = {
    'cut_short': (_cut_short, r'the TFRecord file is cut short: record 3 '
                  r'\(counting from 1, at byte offset 8032\)'),
    'flipped_crc': (_flipped_data_crc, r'damaged TFRecord at record 2 '
                    r'\(counting from 1, at byte offset 4016\): the data '
                    'checksum does not match'),
    'text': (_text, 'not a TFRecord file'),
    'gzip': (gzip.compress, 'the file is gzip-compressed'),
}


@pytest.mark.parametrize('damage', sorted(DAMAGES))
def test_validate_names_the_damaged_file(tmp_path, capfd, damage):
  make_damaged, expected = DAMAGES[damage]
  data = tmp_path / 'data'
  data.mkdir()
  good = _write_records(data / 'train-00000-of-00002.tfrecord')
  (data / 'val-00000-of-00001.tfrecord').write_bytes(good)
  (data / 'train-00001-of-00002.tfrecord').write_bytes(b'')  # Accepted.
  bad = data / 'train-00002-of-00002.tfrecord'
  bad.write_bytes(make_damaged(good))
  root = tmp_path / 'root'

  assert cli.main(['validate', '--data', str(data), '--pipeline-root',
                   str(root)]) == 1

  terminal = capfd.readouterr()
  err = terminal.err
  assert f'The pipeline run failed: {bad}: ' in err
  assert re.search(expected, err), err
  assert 'Traceback' not in terminal.out + err
  assert "b'" not in err and '\\x' not in err
  paragraph = err.split('The pipeline run failed: ')[1].split('\nFull log')[0]
  assert '\n' not in paragraph and len(paragraph) < 600
  log, = (root / 'logs').glob('*.log')
  assert f'Input check failed: {bad}' in log.read_text()
  empty = data / 'train-00001-of-00002.tfrecord'
  assert f'Input check: {empty}: 0 records' in log.read_text()
  # Nothing downstream started: no component ran, no ML Metadata written.
  assert not (root / 'metadata.sqlite').exists()
  assert not (root / 'ImportExampleGen').exists()


def test_validate_names_a_damaged_metadata_store(tmp_path, capfd):
  data = tmp_path / 'data'
  data.mkdir()
  good = _write_records(data / 'train-00000-of-00001.tfrecord')
  (data / 'val-00000-of-00001.tfrecord').write_bytes(good)
  root = tmp_path / 'root'
  root.mkdir()
  store = root / 'metadata.sqlite'
  store.write_bytes(b'\x00garbage' * 600)

  assert cli.main(['validate', '--data', str(data), '--pipeline-root',
                   str(root)]) == 1

  err = capfd.readouterr().err
  assert (f'The pipeline run failed: {store}: the ML Metadata store of this '
          'pipeline root is not an SQLite database') in err
  assert f'mv {store} {store}.damaged' in err
  assert 'CREATE TABLE' not in err and 'Traceback' not in err
  assert not (root / 'ImportExampleGen').exists()
  assert store.read_bytes() == b'\x00garbage' * 600
