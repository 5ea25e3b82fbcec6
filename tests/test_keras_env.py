"""`tf.keras` is Keras 2 (tf_keras) wherever our code runs."""

import os
import subprocess
import sys

import pytest

from tests.pipeline_helpers import REPO_ROOT


def _python(code_or_args, env_without_keras_flag=True, **kwargs):
  env = dict(os.environ)
  if env_without_keras_flag:
    env.pop('TF_USE_LEGACY_KERAS', None)
  return subprocess.run([sys.executable, *code_or_args], capture_output=True,
                        text=True, cwd=REPO_ROOT, env=env, check=False, **kwargs)


def test_tf_keras_is_keras2_in_this_test_process():
  import tensorflow as tf
  import tf_keras
  assert tf.keras.__name__.startswith('tf_keras')
  assert tf.keras.layers.Dense is tf_keras.layers.Dense


def test_tf_keras_is_keras2_inside_a_pipeline_component(tmp_path):
  output_file = tmp_path / 'keras.txt'
  result = _python(['-m', 'tests.keras_probe', str(tmp_path / 'root'),
                    str(output_file)], timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  module, is_tf_keras = output_file.read_text().split()
  assert module.startswith('tf_keras'), module
  assert is_tf_keras == 'True'


@pytest.mark.parametrize('package',
                         ['tfx_pipeline', 'trainer_module', 'transform_module'])
def test_importing_our_packages_after_keras3_is_bound_fails_clearly(package):
  result = _python(['-c', 'import tensorflow as tf; tf.keras.layers; '
                    f'import {package}'], timeout=300)
  assert result.returncode != 0
  assert 'KerasVersionError' in result.stderr
  assert 'TF_USE_LEGACY_KERAS=1' in result.stderr


def test_the_guard_sets_the_flag_without_loading_tensorflow():
  result = _python(['-c', 'import os, sys; '
                    'from schemas import keras_env; '
                    'keras_env.ensure_legacy_keras(); '
                    'print(os.environ["TF_USE_LEGACY_KERAS"], '
                    '"tensorflow" in sys.modules)'], timeout=60)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.split() == ['1', 'False']
