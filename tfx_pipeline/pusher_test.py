"""Tests of the Pusher executor: atomic versions, never a model twice."""

import json
import pathlib
import signal
import subprocess
import sys
import textwrap

import pytest

from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from tfx_pipeline import pusher

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def _artifacts(tmp_path, name):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name)
  serving = tmp_path / name / 'Format-Serving'
  serving.mkdir(parents=True)
  (serving / 'saved_model.pb').write_bytes(name.encode())
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / f'{name}_blessing')
  blessing.set_int_custom_property('blessed', 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'{name}_pushed')
  return ({standard_component_specs.MODEL_KEY: [model],
           standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
          {standard_component_specs.PUSHED_MODEL_KEY: [pushed]})


def _push(tmp_path, name, push_dir):
  inputs, outputs = _artifacts(tmp_path, name)
  properties = {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
      {'filesystem': {'base_directory': str(push_dir)}})}
  pusher.Executor().Do(inputs, outputs, properties)
  return outputs[standard_component_specs.PUSHED_MODEL_KEY][0]


def test_a_model_is_pushed_once_and_then_named_as_already_pushed(tmp_path):
  push_dir = tmp_path / 'pushed_models'
  first = _push(tmp_path, 'model_1', push_dir)
  assert first.get_int_custom_property('pushed') == 1
  version = first.get_string_custom_property('pushed_destination')
  assert (push_dir / version.rsplit('/', 1)[-1] / 'saved_model.pb').exists()

  # The same model again (another blessing of it): not pushed again.
  inputs, outputs = _artifacts(tmp_path / 'again', 'x')
  inputs[standard_component_specs.MODEL_KEY][0].uri = str(tmp_path / 'model_1')
  pusher.Executor().Do(inputs, outputs, {
      standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
          {'filesystem': {'base_directory': str(push_dir)}})})
  again = outputs[standard_component_specs.PUSHED_MODEL_KEY][0]
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property(
      pusher.ALREADY_PUSHED_PROPERTY) == version
  assert len(list(push_dir.iterdir())) == 1


def test_an_unblessed_model_is_not_pushed(tmp_path):
  inputs, outputs = _artifacts(tmp_path, 'model')
  inputs[standard_component_specs.MODEL_BLESSING_KEY][0].set_int_custom_property(
      'blessed', 0)
  pusher.Executor().Do(inputs, outputs, {
      standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
          {'filesystem': {'base_directory': str(tmp_path / 'pushed')}})})
  assert outputs[standard_component_specs.PUSHED_MODEL_KEY][0]\
      .get_int_custom_property('pushed') == 0
  assert not (tmp_path / 'pushed').exists()


def _versions(push_dir):
  return sorted(path.name for path in push_dir.iterdir())


def test_a_push_killed_mid_copy_leaves_no_version_and_the_next_push_succeeds(
    tmp_path):
  inputs, outputs = _artifacts(tmp_path, 'model_1')
  model_dir = tmp_path / 'model_1' / 'Format-Serving'
  (model_dir / 'variables').mkdir()
  (model_dir / 'variables' / 'variables.index').write_bytes(b'index')
  push_dir = tmp_path / 'pushed_models'
  # A Pusher process killed (SIGKILL) after copying its first model file.
  code = textwrap.dedent(f"""
      import os, signal
      from tfx.dsl.io import fileio
      from tfx_pipeline import pusher
      copy = fileio.copy
      def copy_then_die(*args, **kwargs):
        copy(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
      fileio.copy = copy_then_die
      pusher.push_version({str(model_dir)!r}, {str(push_dir)!r})
      """)
  killed = subprocess.run([sys.executable, '-c', code], cwd=REPO_ROOT,
                          check=False, capture_output=True, text=True)
  assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
  left = _versions(push_dir)
  assert len(left) == 1 and left[0].startswith(pusher.TEMP_PREFIX), left
  assert not any(name.isdigit() for name in left)

  pushed = _push(tmp_path / 'again', 'model_2', push_dir)
  assert pushed.get_int_custom_property('pushed') == 1
  version = pushed.get_string_custom_property('pushed_version')
  assert _versions(push_dir) == [version]  # The leftover copy is gone.
  assert pushed.get_string_custom_property(
      'pushed_destination') == str(push_dir / version)
  assert (push_dir / version / 'saved_model.pb').read_bytes() == b'model_2'


def test_where_a_rename_is_a_copy_an_interrupted_version_is_removed(
    tmp_path, monkeypatch):
  monkeypatch.setattr(pusher, 'renames_atomically', lambda base: False)
  push_dir = tmp_path / 'pushed_models'
  # What a push killed while filling its version directory leaves.
  partial = push_dir / '1700000000'
  partial.mkdir(parents=True)
  (partial / pusher.SOURCE_FILE).write_text(str(tmp_path / 'old'))
  (push_dir / f'{pusher.TEMP_PREFIX}1700000000-0123abcd').mkdir()
  pushed = _push(tmp_path, 'model_1', push_dir)
  version = pushed.get_string_custom_property('pushed_version')
  assert _versions(push_dir) == [version]
  assert (push_dir / version / 'saved_model.pb').read_bytes() == b'model_1'
  assert (push_dir / version / pusher.SOURCE_FILE).read_text() == str(
      tmp_path / 'model_1' / 'Format-Serving')


@pytest.mark.parametrize('atomic_rename', [True, False])
def test_two_pushes_in_the_same_second_get_two_versions(tmp_path, monkeypatch,
                                                        atomic_rename):
  monkeypatch.setattr(pusher.time, 'time', lambda: 1700000000.5)
  monkeypatch.setattr(pusher, 'renames_atomically',
                      lambda base: atomic_rename)
  push_dir = tmp_path / 'pushed_models'
  first = _push(tmp_path, 'model_1', push_dir)
  second = _push(tmp_path, 'model_2', push_dir)
  versions = [artifact.get_string_custom_property('pushed_version')
              for artifact in (first, second)]
  assert versions == ['1700000000', '1700000001']
  assert _versions(push_dir) == versions
  for version, name in zip(versions, ('model_1', 'model_2')):
    assert (push_dir / version / 'saved_model.pb').read_bytes() == name.encode()


def test_a_version_taken_between_the_choice_and_the_rename_is_not_overwritten(
    tmp_path, monkeypatch):
  push_dir = tmp_path / 'pushed_models'
  other = push_dir / '1700000000'
  choose = pusher._free_version

  def chosen_then_taken(base, first):
    version = choose(base, first)
    if not other.exists():  # Another Pusher renames its copy into place.
      other.mkdir(parents=True)
      (other / 'saved_model.pb').write_bytes(b'other')
    return version

  monkeypatch.setattr(pusher, '_free_version', chosen_then_taken)
  model = tmp_path / 'model_1' / 'Format-Serving'
  model.mkdir(parents=True)
  (model / 'saved_model.pb').write_bytes(b'model_1')
  version = pusher.push_version(str(model), str(push_dir), now=1700000000)
  assert version == '1700000001'
  assert (other / 'saved_model.pb').read_bytes() == b'other'
  assert (push_dir / version / 'saved_model.pb').read_bytes() == b'model_1'
  assert _versions(push_dir) == ['1700000000', '1700000001']
