"""`maskformer-tfx run` and `validate`: one run per pipeline root, each run
with its own log."""

import datetime

import pytest

from runners import cli
from tfx_pipeline import run_lock
from tfx_pipeline.report import mlmd_run


@pytest.mark.parametrize('command', ['run', 'validate'])
def test_a_second_run_on_a_root_stops_at_once_naming_the_first(
    tmp_path, capsys, command):
  root = tmp_path / 'root'
  with run_lock.hold(str(root), 'the-first-run') as first:
    code = cli.main([command, '--data', str(tmp_path / 'no_data'),
                     '--pipeline-root', str(root)])
    assert code == 1
    error = capsys.readouterr().err
    assert f'maskformer-tfx {command} stopped' in error
    assert first.describe() in error
    assert str(root) in error
    # The first run keeps the root; the second wrote nothing there.
    assert run_lock.holder(str(root)) == first
    assert sorted(path.name for path in root.iterdir()) == sorted(
        [run_lock.FLOCK_FILE, run_lock.LOCK_FILE])


def test_runs_started_in_the_same_second_have_their_own_logs(tmp_path):
  start = datetime.datetime(2026, 12, 7, 23, 40, 1)
  first = start.isoformat()
  second = (start + datetime.timedelta(microseconds=1)).isoformat()
  paths = {mlmd_run.log_path(str(tmp_path), run_id)
           for run_id in (first, second)}
  assert paths == {str(tmp_path / 'logs' / 'run-2026-12-07T23-40-01.log'),
                   str(tmp_path / 'logs' /
                       'run-2026-12-07T23-40-01.000001.log')}
