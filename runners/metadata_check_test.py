"""`metadata_check` accepts a real ML Metadata store and names a damaged one."""

import os

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
import pytest

from runners import metadata_check
from runners.metadata_check import MetadataStoreError


def _real_store(path) -> None:
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(path)
  config.sqlite.connection_mode = 3  # READWRITE_OPENCREATE
  store = mlmd.MetadataStore(config)
  artifact_type = metadata_store_pb2.ArtifactType(name='Examples')
  store.put_artifact_type(artifact_type)


def test_missing_empty_and_real_stores_are_accepted(tmp_path):
  metadata_check.check_sqlite_store(str(tmp_path / 'missing.sqlite'))
  empty = tmp_path / 'empty.sqlite'
  empty.write_bytes(b'')
  metadata_check.check_sqlite_store(str(empty))
  real = tmp_path / 'metadata.sqlite'
  _real_store(real)
  metadata_check.check_sqlite_store(str(real))


def test_a_file_that_is_no_sqlite_database_is_named(tmp_path):
  path = tmp_path / 'metadata.sqlite'
  path.write_bytes(os.urandom(5000))
  with pytest.raises(MetadataStoreError) as error:
    metadata_check.check_sqlite_store(str(path))
  message = str(error.value)
  assert message.startswith(
      f'{path}: the ML Metadata store of this pipeline root is not an SQLite '
      'database')
  assert f'mv {path} {path}.damaged' in message
  assert 'CREATE TABLE' not in message


def test_a_damaged_page_is_named(tmp_path):
  path = tmp_path / 'metadata.sqlite'
  _real_store(path)
  data = bytearray(path.read_bytes())
  page_size = int.from_bytes(data[16:18], 'big')
  assert len(data) >= 3 * page_size
  # Overwrite the second page (a table's b-tree page) with garbage.
  data[page_size:2 * page_size] = b'\xff' * page_size
  path.write_bytes(bytes(data))
  with pytest.raises(MetadataStoreError,
                     match='is a damaged SQLite database'):
    metadata_check.check_sqlite_store(str(path))


def test_a_read_only_store_is_named(tmp_path, monkeypatch):
  path = tmp_path / 'metadata.sqlite'
  _real_store(path)
  # As root every file is writable: the read-only folder is simulated.
  folder = str(tmp_path)
  real_access = os.access
  monkeypatch.setattr(
      metadata_check.os, 'access',
      lambda name, mode: (name != folder or not mode & os.W_OK) and
      real_access(name, mode))
  with pytest.raises(MetadataStoreError, match='cannot be written'):
    metadata_check.check_sqlite_store(str(path))
