"""The browser test's Chromium comes from `make test-deps`, never from a test."""

import pathlib
import subprocess

import pytest

from tests import chromium
from tests.pipeline_helpers import REPO_ROOT


def test_missing_chromium_fails_naming_the_set_up_step(monkeypatch, tmp_path):
  monkeypatch.setenv('PATH', str(tmp_path))
  with pytest.raises(pytest.fail.Exception) as failure:
    chromium.require_chromium()
  assert 'run `make test-deps`' in str(failure.value)


def test_make_test_runs_test_deps_and_no_test_installs_packages():
  dry_run = subprocess.run(['make', '-n', 'test'], cwd=REPO_ROOT, check=True,
                           capture_output=True, text=True).stdout
  assert 'apt-get install' in dry_run  # The recipe of test-deps.
  sources = [path for path in (REPO_ROOT / 'tests').glob('*.py')
             if path.name != pathlib.Path(__file__).name]
  for path in sources:
    assert 'apt-get' not in path.read_text(), path
