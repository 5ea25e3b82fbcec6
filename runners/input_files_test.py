"""`input_files` reads TFRecord framing as TensorFlow writes it and names
each kind of damage (file, record, offset)."""

import gzip
import os

import pytest
import tensorflow as tf

from runners import input_files
from runners.input_files import DamagedInputError

# Record sizes that cross the checker's read chunk and include an empty one.
PAYLOADS = [b'a' * 100, b'', os.urandom(5 << 20), b'\x1f\x8b' * 7]


def _write(path, payloads=PAYLOADS) -> bytes:
  with tf.io.TFRecordWriter(str(path)) as writer:
    for payload in payloads:
      writer.write(payload)
  return path.read_bytes()


def _tf_reads(path) -> int:
  return sum(1 for _ in tf.data.TFRecordDataset(str(path)))


def test_valid_files_are_counted_as_tensorflow_reads_them(tmp_path):
  path = tmp_path / 'train-00000-of-00001.tfrecord'
  _write(path)
  assert input_files.check_file(str(path)) == _tf_reads(path) == 4
  # A first record 0x8b1f bytes long starts with the gzip magic: still valid.
  gzip_like = tmp_path / 'train-gzip-like.tfrecord'
  _write(gzip_like, [b'x' * 0x8b1f])
  assert gzip_like.read_bytes()[:2] == b'\x1f\x8b'
  assert input_files.check_file(str(gzip_like)) == 1
  empty = tmp_path / 'train-empty.tfrecord'
  empty.write_bytes(b'')
  assert input_files.check_file(str(empty)) == 0
  compressed = tmp_path / 'train-00000-of-00001.tfrecord.gz'
  compressed.write_bytes(gzip.compress(path.read_bytes()))
  assert input_files.check_file(str(compressed)) == 4
  assert input_files.check_split_files(str(tmp_path), ['train-*']) == 9


def test_cut_short_file_names_the_record(tmp_path):
  path = tmp_path / 'train.tfrecord'
  data = _write(path)
  path.write_bytes(data[:-10])
  with pytest.raises(tf.errors.DataLossError):
    _tf_reads(path)
  offset = 2 * 16 + 100 + len(PAYLOADS[2])
  with pytest.raises(DamagedInputError) as error:
    input_files.check_file(str(path))
  assert str(error.value).startswith(
      f'{path}: the TFRecord file is cut short: record 4 (counting from 1, at '
      f'byte offset {offset + 16})')
  path.write_bytes(data[:5])
  with pytest.raises(DamagedInputError, match=r'cut short: record 1 .* only 5 '
                     'of its 12 header bytes'):
    input_files.check_file(str(path))


def test_flipped_data_byte_is_a_data_checksum_error(tmp_path):
  path = tmp_path / 'train.tfrecord'
  data = bytearray(_write(path))
  data[16 + 100 + 12 + 1000] ^= 0x01  # Inside record 3's data.
  path.write_bytes(bytes(data))
  with pytest.raises(tf.errors.DataLossError):
    _tf_reads(path)
  with pytest.raises(DamagedInputError,
                     match=r'damaged TFRecord at record 3 \(counting from 1, '
                     r'at byte offset 132\): the data checksum does not match'):
    input_files.check_file(str(path))


def test_flipped_length_is_a_length_checksum_error(tmp_path):
  path = tmp_path / 'train.tfrecord'
  data = bytearray(_write(path))
  data[116] ^= 0x04  # Record 2's length.
  path.write_bytes(bytes(data))
  with pytest.raises(DamagedInputError,
                     match=r'record 2 .*the length checksum does not match'):
    input_files.check_file(str(path))


def test_text_and_gzip_files_are_named_for_what_they_are(tmp_path):
  text = tmp_path / 'train-00001-of-00002.tfrecord'
  text.write_text('image_id,file_name\n1,a.jpg\n')
  with pytest.raises(DamagedInputError,
                     match=r'train-00001-of-00002\.tfrecord: not a TFRecord '
                     r'file .*looks like a text file'):
    input_files.check_file(str(text))
  compressed = tmp_path / 'train-00000-of-00002.tfrecord'
  compressed.write_bytes(gzip.compress(_write(tmp_path / 'plain')))
  with pytest.raises(DamagedInputError) as error:
    input_files.check_file(str(compressed))
  message = str(error.value)
  assert message.startswith(f'{compressed}: the file is gzip-compressed')
  assert 'end in .gz' in message and 'gunzip -c' in message
  broken_gzip = tmp_path / 'train-3.tfrecord.gz'
  whole = gzip.compress(_write(tmp_path / 'plain'))
  broken_gzip.write_bytes(whole[:len(whole) // 2])
  with pytest.raises(DamagedInputError,
                     match=r'train-3\.tfrecord\.gz: cannot be read or '
                     'decompressed'):
    input_files.check_file(str(broken_gzip))


def test_split_check_reads_only_matched_files_and_names_the_first_bad(
    tmp_path):
  _write(tmp_path / 'train-0.tfrecord')
  (tmp_path / 'notes.txt').write_text('not an input')
  (tmp_path / 'val-0.tfrecord').write_text('junk junk junk')
  assert input_files.check_split_files(str(tmp_path), ['train-*']) == 4
  with pytest.raises(DamagedInputError, match=r'val-0\.tfrecord: not a'):
    input_files.check_split_files(str(tmp_path), ['train-*', 'val-*'])


def test_unreadable_and_corrupt_compressed_files_are_named(tmp_path):
  corrupt = bytearray(gzip.compress(_write(tmp_path / 'plain')))
  corrupt[40:60] = b'\x00' * 20  # Inside the deflate stream.
  path = tmp_path / 'train-0.tfrecord.gz'
  path.write_bytes(bytes(corrupt))
  with pytest.raises(DamagedInputError,
                     match=r'train-0\.tfrecord\.gz: cannot be read or '
                     r'decompressed \(error: Error -3 while decompressing'):
    input_files.check_file(str(path))
  folder = tmp_path / 'train-1.tfrecord'
  folder.mkdir()
  with pytest.raises(DamagedInputError,
                     match=r'train-1\.tfrecord: cannot be read'):
    input_files.check_file(str(folder))
