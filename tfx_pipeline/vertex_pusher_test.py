"""Tests of the Vertex Pusher executor, the Vertex AI client faked."""

import inspect
import json
from typing import Any, Dict, List

import pytest
from google.cloud import aiplatform
from tfx.dsl.components.base import base_executor
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs

from tfx_pipeline import pusher
from tfx_pipeline import vertex_pusher

PROJECT, REGION = 'proj', 'us-central1'


def _check_call(method, *args, **kwargs):
  """The real SDK method accepts these arguments (names, no extras)."""
  inspect.signature(method).bind(*args, **kwargs)


class _FakeEndpoint:
  """An endpoint's deployed models and traffic split; traffic moves as the
  SDK's own `Endpoint._allocate_traffic` / `_unallocate_traffic` move it."""

  def __init__(self, fake, display_name):
    self.fake = fake
    self.display_name = display_name
    self.resource_name = (f'projects/{PROJECT}/locations/{REGION}/endpoints/'
                          f'{len(fake.endpoints) + 1}')
    self.traffic_split: Dict[str, int] = {}
    self.deployed: Dict[str, str] = {}  # deployed model id -> model version

  def list_models(self):
    return [type('DeployedModel', (), {'id': deployed_id})()
            for deployed_id in self.deployed]

  def undeploy(self, deployed_model_id, sync=True):
    _check_call(aiplatform.Endpoint.undeploy, self,
                deployed_model_id=deployed_model_id, sync=sync)
    assert sync
    assert self.traffic_split.get(deployed_model_id, 0) == 0, (
        'undeploying a model that still has traffic')
    self.fake.calls.append(('undeploy', deployed_model_id))
    # A model without traffic is absent from the split, as after the SDK's
    # `_allocate_traffic` of 100 %.
    self.traffic_split.pop(deployed_model_id, None)
    del self.deployed[deployed_model_id]


class _FakeModel:

  def __init__(self, fake, resource_name, version_id, kwargs):
    self.fake = fake
    self.resource_name = resource_name
    self.version_id = version_id
    self.versioned_resource_name = f'{resource_name}@{version_id}'
    self.upload_kwargs = kwargs

  def deploy(self, endpoint, machine_type, min_replica_count,
             max_replica_count, traffic_percentage, sync):
    _check_call(aiplatform.Model.deploy, self, endpoint=endpoint,
                machine_type=machine_type,
                min_replica_count=min_replica_count,
                max_replica_count=max_replica_count,
                traffic_percentage=traffic_percentage, sync=sync)
    assert sync and machine_type and 1 <= min_replica_count
    assert min_replica_count <= max_replica_count
    deployed_id = str(len(self.fake.calls) + 100)
    self.fake.calls.append(('deploy', self.versioned_resource_name,
                            traffic_percentage))
    endpoint.traffic_split = aiplatform.Endpoint._allocate_traffic(
        endpoint.traffic_split, traffic_percentage)
    endpoint.traffic_split[deployed_id] = endpoint.traffic_split.pop('0')
    endpoint.deployed[deployed_id] = self.versioned_resource_name


class _FakeAiplatform:
  """The parts of `google.cloud.aiplatform` the executor uses, recording
  each request."""

  def __init__(self):
    self.models: Dict[str, List[_FakeModel]] = {}
    self.endpoints: List[_FakeEndpoint] = []
    self.calls: List[Any] = []
    fake = self

    class Model:
      @staticmethod
      def list(filter, order_by):
        _check_call(aiplatform.Model.list, filter=filter, order_by=order_by)
        name = filter.split('"')[1]
        return fake.models.get(name, [])[:1]

      @staticmethod
      def upload(**kwargs):
        _check_call(aiplatform.Model.upload, **kwargs)
        fake.calls.append(('upload', kwargs))
        versions = fake.models.setdefault(kwargs['display_name'], [])
        if kwargs['parent_model']:
          assert kwargs['parent_model'] == versions[0].resource_name
        resource = (versions[0].resource_name if versions else
                    f'projects/{PROJECT}/locations/{REGION}/models/'
                    f'{len(fake.models)}')
        model = _FakeModel(fake, resource, str(len(versions) + 1), kwargs)
        versions.append(model)
        return model

    class Endpoint:
      @staticmethod
      def list(filter):
        _check_call(aiplatform.Endpoint.list, filter=filter)
        name = filter.split('"')[1]
        return [e for e in fake.endpoints if e.display_name == name]

      @staticmethod
      def create(display_name, project, location):
        _check_call(aiplatform.Endpoint.create, display_name=display_name,
                    project=project, location=location)
        assert (project, location) == (PROJECT, REGION)
        fake.calls.append(('create_endpoint', display_name))
        endpoint = _FakeEndpoint(fake, display_name)
        fake.endpoints.append(endpoint)
        return endpoint

    self.Model = Model
    self.Endpoint = Endpoint

  def init(self, project, location):
    assert (project, location) == (PROJECT, REGION)


@pytest.fixture
def fake(monkeypatch):
  fake = _FakeAiplatform()
  monkeypatch.setattr(vertex_pusher, '_aiplatform', lambda: fake)
  return fake


def _push(tmp_path, name, endpoint=None, blessed=1, run_id='run-1'):
  model = standard_artifacts.Model()
  model.uri = str(tmp_path / name)
  serving = tmp_path / name / 'Format-Serving'
  serving.mkdir(parents=True, exist_ok=True)
  (serving / 'saved_model.pb').write_bytes(name.encode())
  blessing = standard_artifacts.ModelBlessing()
  blessing.uri = str(tmp_path / 'Evaluator' / 'blessing' / name)
  blessing.set_int_custom_property('blessed', blessed)
  pushed = standard_artifacts.PushedModel()
  pushed.uri = str(tmp_path / f'{name}_pushed_{run_id}')
  config = vertex_pusher.registry_config(
      PROJECT, REGION, 'maskformer', 'us-docker.pkg.dev/serving:2.16',
      {'pipeline': 'maskformer', 'experiment': 'maskformer_tiny'},
      'gs://bucket/coco', 'gs://bucket/report.html', endpoint=endpoint)
  properties = {
      standard_component_specs.PUSH_DESTINATION_KEY: json.dumps(
          {'filesystem': {'base_directory': str(tmp_path / 'pushed')}}),
      'custom_config': json.dumps({vertex_pusher.REGISTRY_KEY: config}),
  }
  executor = vertex_pusher.Executor(
      base_executor.BaseExecutor.Context(pipeline_run_id=run_id))
  executor.Do({standard_component_specs.MODEL_KEY: [model],
               standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
              {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
              properties)
  return pushed


def _uploads(fake):
  return [call[1] for call in fake.calls if call[0] == 'upload']


def test_first_and_second_push_are_versions_of_one_registry_model(
    fake, tmp_path):
  first = _push(tmp_path, 'model_1')
  [upload] = _uploads(fake)
  assert upload['parent_model'] is None
  assert upload['is_default_version'] is True
  assert upload['version_aliases'] == ['blessed', 'run-run-1']
  assert upload['labels'] == {'pipeline': 'maskformer',
                              'experiment': 'maskformer_tiny',
                              'run': 'run-1'}
  assert upload['artifact_uri'].startswith(str(tmp_path / 'pushed'))
  assert 'data: gs://bucket/coco' in upload['version_description']
  assert 'review report: gs://bucket/report.html' in upload[
      'version_description']
  assert first.get_int_custom_property('pushed') == 1
  model = fake.models['maskformer'][0]
  assert first.get_string_custom_property(
      'pushed_destination') == model.versioned_resource_name

  second = _push(tmp_path, 'model_2', run_id='run-2')
  second_upload = _uploads(fake)[1]
  assert second_upload['parent_model'] == model.resource_name
  assert second_upload['version_aliases'][0] == 'blessed'
  assert second.get_string_custom_property('pushed_destination') == (
      f'{model.resource_name}@2')


def test_unblessed_and_already_pushed_models_upload_nothing(fake, tmp_path):
  unblessed = _push(tmp_path, 'model_0', blessed=0)
  assert unblessed.get_int_custom_property('pushed') == 0
  assert not fake.calls
  _push(tmp_path, 'model_1')
  # A cached rerun: the same model, blessed again.
  again = _push(tmp_path, 'model_1', run_id='run-2')
  assert again.get_int_custom_property('pushed') == 0
  assert again.get_string_custom_property('already_pushed_as') == (
      fake.models['maskformer'][0].versioned_resource_name)
  assert len(_uploads(fake)) == 1


def test_an_upload_interrupted_after_the_copy_is_retried(fake, tmp_path,
                                                         monkeypatch):
  monkeypatch.setattr(fake.Model, 'upload', staticmethod(
      lambda **kwargs: (_ for _ in ()).throw(RuntimeError('quota'))))
  with pytest.raises(RuntimeError, match='quota'):
    _push(tmp_path, 'model_1')
  monkeypatch.undo()
  monkeypatch.setattr(vertex_pusher, '_aiplatform', lambda: fake)
  retried = _push(tmp_path, 'model_1', run_id='run-2')
  assert retried.get_int_custom_property('pushed') == 1
  assert len(list((tmp_path / 'pushed').iterdir())) == 1


def _endpoint(percent):
  return {'name': 'maskformer-endpoint', 'machine_type': 'n1-standard-4',
          'min_replicas': 1, 'max_replicas': 2, 'traffic_percent': percent}


def test_endpoint_at_100_percent_replaces_the_previous_version(fake,
                                                               tmp_path):
  first = _push(tmp_path, 'model_1', endpoint=_endpoint(100))
  [endpoint] = fake.endpoints
  assert first.get_string_custom_property(
      pusher.ENDPOINT_PROPERTY) == endpoint.resource_name
  [first_id] = endpoint.deployed
  assert endpoint.traffic_split == {first_id: 100}
  _push(tmp_path, 'model_2', endpoint=_endpoint(100), run_id='run-2')
  assert [call[0] for call in fake.calls] == [
      'upload', 'create_endpoint', 'deploy', 'upload', 'deploy', 'undeploy']
  [second_id] = endpoint.deployed
  assert endpoint.deployed[second_id].endswith('@2')
  assert endpoint.traffic_split == {second_id: 100}


def test_endpoint_below_100_percent_is_a_canary_beside_the_previous(
    fake, tmp_path):
  _push(tmp_path, 'model_1', endpoint=_endpoint(100))
  _push(tmp_path, 'model_2', endpoint=_endpoint(10), run_id='run-2')
  [endpoint] = fake.endpoints
  assert 'undeploy' not in [call[0] for call in fake.calls]
  by_version = {endpoint.deployed[i].rsplit('@', 1)[1]: percent
                for i, percent in endpoint.traffic_split.items()}
  assert by_version == {'1': 90, '2': 10}


def test_description_names_quality_images_and_data():
  description = vertex_pusher.version_description(
      {'pq': 0.5, 'sq': 0.75, 'rq': 0.6, 'pq_things': 0.4, 'sq_things': 0.7,
       'rq_things': 0.5, 'pq_stuff': 0.6, 'sq_stuff': 0.8, 'rq_stuff': 0.7,
       'example_count': 5000.0}, 'gs://b/coco', 'gs://b/r.html')
  assert description == (
      'all: PQ 50.00 SQ 75.00 RQ 60.00; things: PQ 40.00 SQ 70.00 RQ 50.00; '
      'stuff: PQ 60.00 SQ 80.00 RQ 70.00; eval images: 5000; '
      'data: gs://b/coco; review report: gs://b/r.html')
