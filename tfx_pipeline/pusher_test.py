"""Tests of the Pusher executor that never pushes the same model twice."""

import json

from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from tfx_pipeline import pusher


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
