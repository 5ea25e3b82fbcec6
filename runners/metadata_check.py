"""Checks a local pipeline root's ML Metadata store (SQLite) before a run.

Every component records its executions and artifacts in the store, so a
damaged or unwritable `metadata.sqlite` fails the run at its first component
with ML Metadata's error (`file is not a database query: CREATE TABLE ...`
or `attempt to write a readonly database`), which names neither the file nor
what to do. `check_sqlite_store` names both before the pipeline starts. The
check reads the SQLite header and runs `PRAGMA quick_check`, which reads
every page once: milliseconds for a local store of a few megabytes.
"""

import os
import pathlib
import sqlite3
from typing import Optional

SQLITE_HEADER = b'SQLite format 3\x00'


class MetadataStoreError(ValueError):
  """The ML Metadata store cannot be used (the message names it)."""


def _problem(path: str) -> Optional[str]:
  """What is wrong with the SQLite file at `path`, or None."""
  try:
    with open(path, 'rb') as stream:
      header = stream.read(len(SQLITE_HEADER))
  except OSError as error:
    return f'cannot be read ({error.strerror or error})'
  if not header:
    return None  # SQLite starts an empty file as a new database.
  if header != SQLITE_HEADER:
    return 'is not an SQLite database (it lacks the SQLite file header)'
  uri = pathlib.Path(path).resolve().as_uri() + '?mode=ro'
  try:
    connection = sqlite3.connect(uri, uri=True)
    try:
      result = connection.execute('PRAGMA quick_check(1)').fetchone()[0]
    finally:
      connection.close()
  except sqlite3.Error as error:
    return f'is a damaged SQLite database ({error})'
  if result != 'ok':
    return f'is a damaged SQLite database (quick_check: {result})'
  directory = os.path.dirname(os.path.abspath(path))
  if not os.access(path, os.W_OK) or not os.access(directory, os.W_OK):
    return ('cannot be written (the file or its folder is read-only; SQLite '
            'also writes a journal file beside it)')
  return None


def check_sqlite_store(path: str) -> None:
  """Raises a one-paragraph error if the store at `path` is unusable.

  A missing or empty file is accepted (the run creates the store).

  Raises:
    MetadataStoreError: naming `path`, the problem and what to do.
  """
  if not os.path.exists(path):
    return
  problem = _problem(path)
  if problem:
    raise MetadataStoreError(
        f'{path}: the ML Metadata store of this pipeline root {problem}. '
        'Every component records its runs there, so no run can start. '
        f'Restore it from a backup, or move it aside (mv {path} '
        f'{path}.damaged) to start a new, empty store: runs before then are '
        'unknown to later runs (no cache, no last blessed model to compare '
        'a new model with).')
