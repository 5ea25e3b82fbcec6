"""`maskformer-tfx run` takes TF Model Garden's --config_file and
--params_override spellings, applied as TFMG applies them; building the
parser, `--help` and argument errors load no TensorFlow."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from runners import cli
from runners.commands import run
from tfx_pipeline import config as pipeline_config
from tfx_pipeline import experiment_overrides


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


def test_help_and_argument_errors_load_no_tensorflow():
  # A fresh interpreter (this one has TensorFlow loaded): what `maskformer-tfx
  # --help`, every subcommand's `--help` and a bad argument import before
  # they exit.
  script = textwrap.dedent("""
      import sys
      from runners import cli
      commands = ('run', 'validate', 'make-sample', 'compile-vertex',
                  'rehearse-vertex', 'report', 'predict', 'import-weights',
                  'diff-test', 'evaluate-coco')
      for argv in (['--help'], *([name, '--help'] for name in commands),
                   ['run', '--train-steps', '0'], ['no-such-command']):
        try:
          cli.main(argv)
        except SystemExit as stop:
          assert stop.code in (0, 2), (argv, stop.code)
        else:
          raise AssertionError(f'{argv} did not exit')
      heavy = sorted(name for name in ('tensorflow', 'official', 'tfx',
                                       'apache_beam', 'tensorflow_transform')
                     if name in sys.modules)
      print('heavy modules:', heavy, file=sys.stderr)
      sys.exit(1 if heavy else 0)
      """)
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  result = subprocess.run([sys.executable, '-c', script], cwd=repo_root,
                          capture_output=True, text=True, timeout=120,
                          check=False)
  assert result.returncode == 0, result.stderr[-3000:]
  assert 'usage: maskformer-tfx run' in result.stdout
  assert 'argument --train-steps: must be at least 1, got 0' in result.stderr
  assert "invalid choice: 'no-such-command'" in result.stderr
