"""Session fixtures built once for all pytest-xdist workers.

`make test` runs the suite on two xdist workers (`--dist loadscope`: each test
module on one worker). A session-scoped fixture is per worker, so a pipeline
run shared by tests in several modules would run once per worker. Here the
first worker that needs it builds it under a file lock, in its own temporary
directory, and records the result as JSON beside the workers' directories;
the others wait on the lock and read that result (the pattern of the
pytest-xdist documentation, "Making session-scoped fixtures execute only
once", with `fcntl` instead of the filelock package).
"""

import contextlib
import fcntl
import json
import os
import pathlib
import subprocess
from typing import Any, Callable, Dict, Iterator

import pytest


def _shared_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
  """The directory every worker of this session sees: the parent of the
  workers' base temporary directories under xdist, else the base one."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get('PYTEST_XDIST_WORKER') else base


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
  with open(path, 'a') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(lock, fcntl.LOCK_UN)


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str,
               build: Callable[[], Any]) -> Any:
  """`build()`'s JSON-serialisable result, built by one worker only.

  A build that raises records nothing: the next worker that needs it builds
  it again (and fails the same way, naming the problem in its own tests).
  """
  shared = _shared_dir(tmp_path_factory)
  record = shared / f'{name}.shared.json'
  with _locked(shared / f'{name}.shared.lock'):
    if record.exists():
      return json.loads(record.read_text())
    value = build()
    record.write_text(json.dumps(value))
    return value


def completed_to_json(result: subprocess.CompletedProcess) -> Dict[str, Any]:
  return {'args': list(map(str, result.args)), 'returncode': result.returncode,
          'stdout': result.stdout, 'stderr': result.stderr}


def completed_from_json(value: Dict[str, Any]) -> subprocess.CompletedProcess:
  return subprocess.CompletedProcess(value['args'], value['returncode'],
                                     stdout=value['stdout'],
                                     stderr=value['stderr'])
