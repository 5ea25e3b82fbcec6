"""One run at a time per local pipeline root.

`maskformer-tfx run` and `validate` hold their pipeline root while they run:
an `fcntl.flock` lock on PIPELINE_ROOT/`FLOCK_FILE`, which the kernel drops
when the process ends however it ends, and PIPELINE_ROOT/`LOCK_FILE`, the
holder's run id, pid, host and start time (JSON, written to a temporary file
and renamed into place), so that a refused run can name the run in its way.

A second run on the root stops at once with `RootLockedError`. A lock file
left by a process on this host that has ended (its flock is free, its run
still named) is taken over with a warning; one that names a process on
another host (a root on a shared file system, where flock may not reach) is
left alone: only that host can tell whether its run is over.

`holder(root)` is the run holding the root, if any; the review page uses it
to tell a run still going from one whose process died.
"""

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import json
import os
import socket
from typing import Callable, Iterator, Optional

from absl import logging

LOCK_FILE = 'run.lock'
FLOCK_FILE = '.run.flock'


class RootLockedError(RuntimeError):
  """Another run holds the pipeline root."""


@dataclasses.dataclass(frozen=True)
class Holder:
  """The run named in a lock file."""
  run_id: str
  pid: int
  host: str
  started: str

  def describe(self) -> str:
    return (f'run {self.run_id} (pid {self.pid} on {self.host}, started '
            f'{self.started})')


def _parse(text: str) -> Optional[Holder]:
  try:
    fields = json.loads(text)
    return Holder(run_id=str(fields['run_id']), pid=int(fields['pid']),
                  host=str(fields['host']), started=str(fields['started']))
  except (ValueError, KeyError, TypeError):
    return None


def _read(path: str) -> str:
  try:
    with open(path, encoding='utf-8') as f:
      return f.read()
  except FileNotFoundError:
    return ''


def _flock_is_free(path: str) -> bool:
  """Whether no process holds the flock of `path` (probed and released)."""
  try:
    fd = os.open(path, os.O_RDONLY)
  except FileNotFoundError:
    return True
  try:
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except OSError as error:
    if error.errno in (errno.EAGAIN, errno.EACCES):
      return False
    raise
  finally:
    os.close(fd)
  return True


def _write_atomically(path: str, text: str) -> None:
  temp = f'{path}.tmp-{os.getpid()}'
  with open(temp, 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(temp, path)


def holder(pipeline_root: str) -> Optional[Holder]:
  """The live run that holds `pipeline_root`, or None."""
  named = _parse(_read(os.path.join(pipeline_root, LOCK_FILE)))
  if named is None:
    return None
  # A free flock means no process holds the root, except where flock does
  # not reach another host: trust the file's word there.
  if (named.host == socket.gethostname() and
      _flock_is_free(os.path.join(pipeline_root, FLOCK_FILE))):
    return None
  return named


@contextlib.contextmanager
def hold(pipeline_root: str, run_id: str,
         warn: Callable[[str], None] = logging.warning) -> Iterator[Holder]:
  """Holds `pipeline_root` for run `run_id` until the block ends; `warn`
  receives the warning about a lock taken over.

  Raises:
    RootLockedError: another run holds the root (naming it).
  """
  os.makedirs(pipeline_root, exist_ok=True)
  path = os.path.join(pipeline_root, LOCK_FILE)
  fd = os.open(os.path.join(pipeline_root, FLOCK_FILE),
               os.O_RDWR | os.O_CREAT, 0o644)
  try:
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
      if error.errno not in (errno.EAGAIN, errno.EACCES):
        raise
      raise RootLockedError(_locked_message(pipeline_root,
                                            _parse(_read(path)))) from None
    previous = _parse(_read(path))
    host = socket.gethostname()
    if previous is not None:
      if previous.host != host:
        raise RootLockedError(_locked_message(pipeline_root, previous))
      # The flock was free: the process that wrote the file has ended.
      warn(f'Taking over the lock of {previous.describe()} on '
           f'{pipeline_root}: its process is no longer running.')
    me = Holder(run_id=run_id, pid=os.getpid(), host=host,
                started=datetime.datetime.now().isoformat(timespec='seconds'))
    _write_atomically(path, json.dumps(dataclasses.asdict(me)))
    try:
      yield me
    finally:
      os.remove(path)  # Released: no file names a run.
  finally:
    os.close(fd)  # Drops the flock.


def _locked_message(pipeline_root: str, named: Optional[Holder]) -> str:
  path = os.path.join(pipeline_root, LOCK_FILE)
  who = named.describe() if named else 'another run'
  text = (f'The pipeline root {pipeline_root} is in use by {who}; one run at '
          'a time per pipeline root. Wait for it to finish or use another '
          '--pipeline-root.')
  if named and named.host != socket.gethostname():
    text += (f' If that run is over (it ran on another host), delete {path}.')
  return text
