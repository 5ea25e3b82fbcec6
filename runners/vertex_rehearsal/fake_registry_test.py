"""The rehearsal's fake Model Registry: requests checked and captured."""

import json

import pytest
from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from runners.vertex_rehearsal import fake_registry
from tfx_pipeline import vertex_pusher


@pytest.fixture
def requests_dir(tmp_path, monkeypatch):
  directory = tmp_path / fake_registry.REQUESTS_DIR
  monkeypatch.setenv(fake_registry.REQUESTS_DIR_ENV, str(directory))
  return directory


def _push(tmp_path, monkeypatch, name, percent):
  # Each push is its own task process: a fresh client over the same files.
  fake = fake_registry.FakeAiplatform()
  monkeypatch.setattr(vertex_pusher, '_aiplatform', lambda: fake)
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name)
  (tmp_path / name / 'Format-Serving').mkdir(parents=True)
  (tmp_path / name / 'Format-Serving' / 'saved_model.pb').write_bytes(b'x')
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'blessing' / name)
  blessing.set_int_custom_property('blessed', 1)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'{name}_pushed')
  config = vertex_pusher.registry_config(
      'proj', 'us-central1', 'maskformer',
      'us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest',
      {'pipeline': 'maskformer'}, 'gs://b/coco',
      endpoint={'name': 'ep', 'machine_type': 'n1-standard-4',
                'min_replicas': 1, 'max_replicas': 1,
                'traffic_percent': percent})
  vertex_pusher.Executor(base_executor.BaseExecutor.Context(
      pipeline_run_id=name)).Do(
          {standard_component_specs.MODEL_KEY: [model],
           standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
          {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
          {standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
              {'filesystem': {'base_directory': str(tmp_path / 'pushed')}}),
           'custom_config': json.dumps({vertex_pusher.REGISTRY_KEY: config})})
  return pushed


def test_two_pushes_capture_a_version_of_the_first_model(requests_dir,
                                                          tmp_path,
                                                          monkeypatch):
  first = _push(tmp_path, monkeypatch, 'model_1', 100)
  second = _push(tmp_path, monkeypatch, 'model_2', 10)
  assert sorted(path.name for path in requests_dir.iterdir()) == [
      'create_endpoint_1.json', 'deploy_model_1.json', 'deploy_model_2.json',
      'upload_model_1.json', 'upload_model_2.json']
  uploads = fake_registry.captured('upload_model')
  assert 'parent_model' not in uploads[0]
  assert uploads[0]['parent'] == 'projects/proj/locations/us-central1'
  model = 'projects/proj/locations/us-central1/models/1'
  assert uploads[1]['parent_model'] == model
  assert uploads[1]['model']['version_aliases'] == ['blessed',
                                                    'run-model-2']
  assert first.get_string_custom_property('pushed_destination') == (
      f'{model}@1')
  assert second.get_string_custom_property('pushed_destination') == (
      f'{model}@2')
  deploys = fake_registry.captured('deploy_model')
  assert deploys[0]['traffic_split'] == {'0': 100}
  # The canary: 10 % to the new version, 90 % stays on the first.
  assert deploys[1]['traffic_split'] == {'0': 10, '1': 90}
  assert deploys[1]['deployed_model']['model'] == f'{model}@2'


@pytest.mark.parametrize('change', [{'unknown_field': 1},
                                    {'labels': {'run': 5}}])
def test_a_request_the_sdk_or_api_would_refuse_raises(requests_dir, change):
  fake = fake_registry.FakeAiplatform()
  fake.init('proj', 'us-central1')
  arguments = dict(display_name='m', artifact_uri='/x',
                   serving_container_image_uri='image', labels={},
                   version_aliases=['blessed'], version_description='',
                   parent_model=None, is_default_version=True)
  with pytest.raises(TypeError):
    fake.Model.upload(**{**arguments, **change})
  assert not requests_dir.exists()
