"""TensorFlow's C++ start-up lines do not reach the terminal of the CLI."""

import os
import pathlib
import subprocess
import sys

from runners import tf_startup

CLI = pathlib.Path(sys.executable).parent / 'maskformer-tfx'


def _environment() -> dict:
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1')
  env.pop('TF_CPP_MIN_LOG_LEVEL', None)  # The CLI's own default applies.
  return env


def _noise(text: str) -> list:
  return [line for line in text.splitlines()
          if tf_startup.STARTUP_NOISE.search(line)]


def test_filter_drops_startup_lines_and_keeps_the_rest(capfd, monkeypatch):
  monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '2')
  with tf_startup.startup_lines_filtered():
    os.write(2, b'2026-11-30 12:00:00.000000: E external/local_xla/xla/'
             b'stream_executor/cuda/cuda_dnn.cc:10575] Unable to register '
             b'cuDNN factory: Attempting to register factory for plugin '
             b'cuDNN when one has already been registered\n')
    os.write(2, b'E tensorflow/core/real_error.cc:1] Something real\n')
    print('a Python warning', file=sys.stderr)
  err = capfd.readouterr().err
  assert 'cuDNN' not in err
  assert 'Something real' in err and 'a Python warning' in err


def test_cli_prints_no_startup_lines_and_still_its_error(tmp_path):
  # What plain `import tensorflow` prints here with the CLI's log level:
  # the lines the CLI has to keep off the terminal.
  plain = subprocess.run(
      [sys.executable, '-c', 'import tensorflow'], capture_output=True,
      text=True, env=dict(_environment(), TF_CPP_MIN_LOG_LEVEL='2'),
      check=False, timeout=300)
  assert _noise(plain.stderr), (
      'this TensorFlow build printed no start-up lines: nothing to check '
      f'against; stderr: {plain.stderr[-2000:]}')

  command = [str(CLI)] if CLI.exists() else [sys.executable, '-m',
                                             'runners.cli']
  missing = tmp_path / 'no_model'
  result = subprocess.run(
      command + ['predict', '--model', str(missing), '--input',
                 str(tmp_path), '--output', str(tmp_path / 'out')],
      capture_output=True, text=True, env=_environment(), check=False,
      timeout=300)
  assert _noise(result.stdout + result.stderr) == []
  # A failing command still says why, in one paragraph, without a traceback.
  assert result.returncode == 1
  assert 'maskformer-tfx predict failed' in result.stderr
  assert str(missing) in result.stderr
  assert 'Traceback' not in result.stderr
