"""Tests of the one-run-per-pipeline-root lock."""

import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from tfx_pipeline import run_lock


def _lock_text(root) -> dict:
  return json.loads((root / run_lock.LOCK_FILE).read_text())


def test_a_second_run_is_refused_naming_the_first_which_keeps_the_root(
    tmp_path):
  with run_lock.hold(str(tmp_path), 'first-run') as first:
    assert first.pid == os.getpid()
    assert run_lock.holder(str(tmp_path)) == first
    with pytest.raises(run_lock.RootLockedError) as refused:
      with run_lock.hold(str(tmp_path), 'second-run'):
        pytest.fail('The second run ran.')
    message = str(refused.value)
    for part in ('first-run', f'pid {os.getpid()}', socket.gethostname(),
                 first.started, str(tmp_path)):
      assert part in message
    assert _lock_text(tmp_path)['run_id'] == 'first-run'
    assert run_lock.holder(str(tmp_path)) == first
  # Released: the root is free again.
  assert run_lock.holder(str(tmp_path)) is None
  with run_lock.hold(str(tmp_path), 'third-run'):
    assert run_lock.holder(str(tmp_path)).run_id == 'third-run'


def test_a_lock_left_by_a_dead_process_on_this_host_is_taken_over(
    tmp_path, caplog):
  dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                        capture_output=True, text=True, check=True)
  pid = int(dead.stdout)
  (tmp_path / run_lock.LOCK_FILE).write_text(json.dumps(
      {'run_id': 'killed-run', 'pid': pid, 'host': socket.gethostname(),
       'started': '2026-12-07T23:00:00'}))
  assert run_lock.holder(str(tmp_path)) is None
  with caplog.at_level(logging.WARNING):
    with run_lock.hold(str(tmp_path), 'new-run'):
      assert _lock_text(tmp_path)['run_id'] == 'new-run'
  warnings = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING]
  assert any('killed-run' in text and f'pid {pid}' in text
             for text in warnings), warnings


def test_a_lock_of_a_process_on_another_host_is_left_alone(tmp_path):
  (tmp_path / run_lock.LOCK_FILE).write_text(json.dumps(
      {'run_id': 'remote-run', 'pid': 1, 'host': 'other-host.invalid',
       'started': '2026-12-07T23:00:00'}))
  assert run_lock.holder(str(tmp_path)).run_id == 'remote-run'
  with pytest.raises(run_lock.RootLockedError,
                     match='remote-run .*other-host.invalid.*delete'):
    with run_lock.hold(str(tmp_path), 'new-run'):
      pytest.fail('The second run ran.')
  assert _lock_text(tmp_path)['run_id'] == 'remote-run'


def test_a_lock_held_by_another_live_process_is_respected(tmp_path):
  code = ('import sys, time\n'
          'from tfx_pipeline import run_lock\n'
          'with run_lock.hold(sys.argv[1], "other-process-run"):\n'
          '  print("held", flush=True)\n'
          '  time.sleep(60)\n')
  other = subprocess.Popen([sys.executable, '-c', code, str(tmp_path)],
                           stdout=subprocess.PIPE, text=True,
                           cwd=os.path.dirname(os.path.dirname(__file__)))
  try:
    assert other.stdout.readline().strip() == 'held'
    assert run_lock.holder(str(tmp_path)).pid == other.pid
    with pytest.raises(run_lock.RootLockedError,
                       match=f'other-process-run .pid {other.pid}'):
      with run_lock.hold(str(tmp_path), 'new-run'):
        pytest.fail('The second run ran.')
  finally:
    other.kill()
    other.wait()
  # Killed with the lock: the next run takes it over.
  with run_lock.hold(str(tmp_path), 'new-run'):
    assert _lock_text(tmp_path)['run_id'] == 'new-run'
