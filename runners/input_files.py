"""Checks the TFRecord files a run reads before the pipeline starts.

ImportExampleGen reads `os.path.join(data_root, pattern)` for each split with
Beam's `ReadFromTFRecord` (compression chosen by the file name: `.gz` is
gzip, anything else is read as an uncompressed TFRecord). A damaged file
fails it deep inside Beam with a message that names neither the file nor the
record and dumps record bytes. `check_split_files` reads each matched file's
TFRecord framing first and stops the run with one paragraph naming the file,
the record (counting from 1) and its byte offset, and the problem.

A TFRecord is a sequence of records, each:
  uint64 length | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)
(little-endian; `tensorflow/core/lib/io/record_writer.cc`). Every record's
length and data checksum are verified: the cost is one sequential read of
the input plus crc32c (hardware-accelerated in `google_crc32c`), which is
dominated by the read; `--skip-input-check` skips it.
"""

import bz2
import gzip
import os
import struct
import zlib
from typing import BinaryIO, Iterable, List, Optional, Tuple

from absl import logging
import google_crc32c
import tensorflow as tf

_HEADER = struct.Struct('<QI')
_FOOTER = struct.Struct('<I')
_GZIP_MAGIC = b'\x1f\x8b'
_CHUNK = 1 << 22
# Beam's CompressionTypes.AUTO: the file name's ending picks the codec.
_DECOMPRESSORS = {'.gz': gzip.GzipFile, '.bz2': bz2.BZ2File}
_OTHER_COMPRESSED = ('.deflate', '.zst', '.zstd', '.lzma')


class DamagedInputError(ValueError):
  """An input file ExampleGen cannot read (the message names it)."""


def _mask(crc: int) -> int:
  return (((crc >> 15) | (crc << 17)) + 0xa282ead8) & 0xffffffff


def _masked_crc_of_stream(stream: BinaryIO, length: int) -> Tuple[int, int]:
  """(masked crc32c, bytes read) of the next `length` bytes of `stream`."""
  checksum = google_crc32c.Checksum()
  read = 0
  while read < length:
    chunk = stream.read(min(_CHUNK, length - read))
    if not chunk:
      break
    checksum.update(chunk)
    read += len(chunk)
  return _mask(int.from_bytes(checksum.digest(), 'big')), read


def _looks_like_text(data: bytes) -> bool:
  try:
    data.decode('utf-8')
  except UnicodeDecodeError:
    return False
  return all(ch >= 32 or ch in b'\t\n\r' for ch in data)


def _not_a_tfrecord(name: str, header: bytes) -> DamagedInputError:
  """The error for a file whose first bytes are no TFRecord header."""
  if header.startswith(_GZIP_MAGIC):
    return DamagedInputError(
        f'{name}: the file is gzip-compressed (it starts with the gzip magic '
        'bytes 1f 8b) but its name does not end in .gz, so ExampleGen would '
        'read it as an uncompressed TFRecord. Rename it to end in .gz (e.g. '
        f'{os.path.basename(name)}.gz, still matched by the split pattern), '
        f'or decompress it: gunzip -c {name} > UNCOMPRESSED.tfrecord.')
  kind = 'a text file' if _looks_like_text(header) else 'another format'
  return DamagedInputError(
      f'{name}: not a TFRecord file (its first bytes are no TFRecord record '
      f'header; it looks like {kind}). Only TFRecord files of tf.Examples may '
      'match --train-pattern/--eval-pattern.')


def check_tfrecord_stream(stream: BinaryIO, name: str) -> int:
  """The number of records of one TFRecord stream.

  Raises:
    DamagedInputError: naming `name`, the record (counting from 1) and its
      byte offset, and the problem.
  """
  index, offset = 0, 0
  reread = ("Copy or convert the file again (e.g. with TF Model Garden's "
            'create_coco_tf_record).')
  while True:
    header = stream.read(_HEADER.size)
    if not header:
      return index
    index += 1
    place = f'record {index} (counting from 1, at byte offset {offset})'
    if len(header) < _HEADER.size:
      if index == 1 and (header.startswith(_GZIP_MAGIC) or
                         _looks_like_text(header)):
        raise _not_a_tfrecord(name, header)
      raise DamagedInputError(
          f'{name}: the TFRecord file is cut short: {place} has only '
          f'{len(header)} of its {_HEADER.size} header bytes before the end '
          f'of the file. {reread}')
    length, length_crc = _HEADER.unpack(header)
    if _mask(google_crc32c.value(header[:8])) != length_crc:
      if index == 1:
        raise _not_a_tfrecord(name, header)
      raise DamagedInputError(
          f'{name}: damaged TFRecord at {place}: the length checksum does '
          f'not match (the bytes changed after the file was written). '
          f'{reread}')
    data_crc, read = _masked_crc_of_stream(stream, length)
    footer = stream.read(_FOOTER.size) if read == length else b''
    if read < length or len(footer) < _FOOTER.size:
      raise DamagedInputError(
          f'{name}: the TFRecord file is cut short: {place} is '
          f'{length + 16} bytes long but the file ends '
          f'{_HEADER.size + read + len(footer)} bytes into it. {reread}')
    if _FOOTER.unpack(footer)[0] != data_crc:
      raise DamagedInputError(
          f'{name}: damaged TFRecord at {place}: the data checksum does not '
          f'match (the bytes changed after the file was written). {reread}')
    offset += length + 16


def _open_as_beam_reads(path: str) -> Optional[BinaryIO]:
  """The file as ReadFromTFRecord decompresses it; None if not checked."""
  stream = tf.io.gfile.GFile(path, 'rb')
  for ending, decompressor in _DECOMPRESSORS.items():
    if path.endswith(ending):
      return decompressor(fileobj=stream, mode='rb')
  if path.endswith(_OTHER_COMPRESSED):
    stream.close()
    return None
  return stream


def check_file(path: str) -> int:
  """The number of records of one input file as ExampleGen reads it.

  Raises:
    DamagedInputError: naming `path` and what is wrong with it.
  """
  stream = _open_as_beam_reads(path)
  if stream is None:
    logging.warning('Input check: %s is compressed in a format this check '
                    'does not read; ExampleGen reads it unchecked.', path)
    return -1
  with stream:
    try:
      return check_tfrecord_stream(stream, path)
    except (OSError, EOFError, zlib.error, tf.errors.OpError) as error:
      raise DamagedInputError(
          f'{path}: cannot be read or decompressed ({type(error).__name__}: '
          f'{error}).') from error


def matched_files(data_root: str, patterns: Iterable[str]) -> List[str]:
  """The files ExampleGen reads for `patterns` under `data_root`, sorted."""
  files = set()
  for pattern in patterns:
    files.update(tf.io.gfile.glob(os.path.join(data_root, pattern)))
  return sorted(path for path in files if not tf.io.gfile.isdir(path))


def check_split_files(data_root: str, patterns: Iterable[str]) -> int:
  """Checks every file the split patterns match; the number of records.

  Empty files are accepted (no records). The first damaged file stops the
  check; its message is logged with the per-file counts read before it.

  Raises:
    DamagedInputError: naming the first damaged file and the problem.
  """
  total = 0
  for path in matched_files(data_root, patterns):
    try:
      records = check_file(path)
    except DamagedInputError as error:
      logging.error('Input check failed: %s', error)
      raise
    logging.info('Input check: %s: %s records', path,
                 'unchecked' if records < 0 else records)
    total += max(records, 0)
  return total
