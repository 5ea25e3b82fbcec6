"""`maskformer-tfx --help`, every subcommand's `--help` and argument errors
load no TensorFlow."""

import os
import subprocess
import sys
import textwrap


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
