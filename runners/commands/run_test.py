"""`maskformer-tfx run` and `validate`: TF Model Garden's --config_file and
--params_override spellings, applied as TFMG applies them; one run per
pipeline root, each run with its own log."""

import datetime
import json

import pytest

from runners import cli
from runners.commands import run
from tfx_pipeline import config as pipeline_config
from tfx_pipeline import experiment_overrides
from tfx_pipeline import run_lock
from tfx_pipeline.report import mlmd_run


def _config(argv, tmp_path):
  args = cli.build_parser().parse_args(['run', *argv])
  return run.pipeline_config_of(args, str(tmp_path / 'data'),
                                str(tmp_path / 'root'))


def _experiment(config):
  from official.modeling import hyperparams
  return hyperparams.override_params_dict(
      pipeline_config.experiment_params(config.experiment),
      config.params_override, is_strict=True)


def test_config_files_then_params_override_reach_the_trainer(tmp_path):
  first, second = tmp_path / 'first.yaml', tmp_path / 'second.yaml'
  first.write_text('task:\n  train_data: {global_batch_size: 4}\n'
                   '  validation_data: {global_batch_size: 3}\n')
  second.write_text('task:\n  train_data: {global_batch_size: 6}\n')
  config = _config(['--config_file', str(first), '--config-file', str(second),
                    '--params_override', 'task.validation_data.global_batch_size=5',
                    '--train-steps', '7'], tmp_path)
  # One self-contained JSON override: the Trainer reads no local file.
  assert str(tmp_path) not in config.params_override
  json.loads(config.params_override)
  params = _experiment(config)
  assert params.task.train_data.global_batch_size == 6   # second file wins
  assert params.task.validation_data.global_batch_size == 5  # override wins
  assert config.train_steps == 7


def test_both_spellings_of_params_override(tmp_path):
  for flag in ('--params_override', '--params-override'):
    config = _config([flag, 'trainer: {train_steps: 11}'], tmp_path)
    assert _experiment(config).trainer.train_steps == 11


def test_a_params_override_file_is_read_like_tfmg_does(tmp_path):
  override = tmp_path / 'override.yaml'
  override.write_text('trainer: {train_steps: 13}\n')
  config = _config(['--params_override', str(override)], tmp_path)
  assert json.loads(config.params_override) == {'trainer': {'train_steps': 13}}


def test_a_key_the_experiment_lacks_is_named_with_its_file(tmp_path):
  bad = tmp_path / 'bad.yaml'
  bad.write_text('task:\n  train_data: {global_batch: 4}\n')
  with pytest.raises(experiment_overrides.ExperimentOverrideError) as raised:
    _config(['--config_file', str(bad)], tmp_path)
  assert f'--config_file {bad}' in str(raised.value)
  assert 'task.train_data.global_batch' in str(raised.value)
  with pytest.raises(experiment_overrides.ExperimentOverrideError,
                     match=r'--params_override: .*trainer\.steps'):
    _config(['--params_override', 'trainer.steps=3'], tmp_path)


def test_run_with_a_bad_config_file_fails_with_one_paragraph(tmp_path, capsys):
  bad = tmp_path / 'bad.yaml'
  bad.write_text('- not\n- a mapping\n')
  assert cli.main(['run', '--config_file', str(bad), '--data',
                   str(tmp_path / 'data'), '--pipeline-root',
                   str(tmp_path / 'root')]) == 1
  error = capsys.readouterr().err
  assert 'The pipeline run failed:' in error
  assert f'--config_file {bad} must be a YAML mapping' in error
  assert 'Traceback' not in error


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
