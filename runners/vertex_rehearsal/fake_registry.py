"""A fake Vertex AI Model Registry and endpoint for the Pusher's requests.

In a rehearsal the Pusher (`tfx_pipeline.vertex_pusher`) gets this client
instead of `google.cloud.aiplatform` (installed by
`container_site/sitecustomize.py` when REQUESTS_DIR_ENV is set). Each call
builds the request the SDK would send with the Vertex AI API types (unknown
fields or wrong types raise as against the API) and writes it as JSON to
REQUESTS_DIR_ENV/<method>_<n>.json (`upload_model_1.json`,
`deploy_model_1.json`, ...). The registry's state is those files, so a
second rehearsal on the same Cloud Storage root uploads a version of the
first one's model.
"""

import inspect
import json
import os
from typing import Any, Dict, List, Optional

from google.protobuf import json_format

from runners.vertex_rehearsal import fake_vertex

REQUESTS_DIR_ENV = 'MASKFORMER_REHEARSAL_VERTEX_REQUESTS'
REQUESTS_DIR = '_vertex_requests'
PUSHER_MODULE = 'tfx_pipeline.vertex_pusher'


def _print(line: str) -> None:
  print(f'[rehearse-vertex] {line}', flush=True)


def _requests_dir() -> str:
  return os.environ[REQUESTS_DIR_ENV]


def captured(method: str, requests_dir: Optional[str] = None
             ) -> List[Dict[str, Any]]:
  """The captured requests of `method`, in order."""
  requests_dir = requests_dir or _requests_dir()
  if not os.path.isdir(requests_dir):
    return []
  numbers = sorted(int(name[len(method) + 1:-len('.json')])
                   for name in os.listdir(requests_dir)
                   if name.startswith(method + '_') and name.endswith('.json')
                   and name[len(method) + 1:-len('.json')].isdigit())
  result = []
  for number in numbers:
    path = os.path.join(requests_dir, f'{method}_{number}.json')
    with open(path, encoding='utf-8') as f:
      result.append(json.load(f))
  return result


def _capture(method: str, request: Any) -> int:
  """Writes `request` (a proto-plus message) as the next <method>_<n>.json
  (written, then renamed); returns n."""
  requests_dir = _requests_dir()
  os.makedirs(requests_dir, exist_ok=True)
  number = len(captured(method, requests_dir)) + 1
  path = os.path.join(requests_dir, f'{method}_{number}.json')
  text = json_format.MessageToJson(type(request).pb(request),
                                   preserving_proto_field_name=True,
                                   sort_keys=True)
  with open(path + '.tmp', 'w', encoding='utf-8') as f:
    f.write(text)
  os.replace(path + '.tmp', path)
  _print(f'Vertex AI -> fake client: {method} request captured as {path}')
  return number


class _Model:
  """A registry model version (what `Model.upload` returns)."""

  def __init__(self, resource_name: str, version_id: str):
    self.resource_name = resource_name
    self.version_id = version_id
    self.versioned_resource_name = f'{resource_name}@{version_id}'

  def deploy(self, endpoint: '_Endpoint', machine_type: str,
             min_replica_count: int, max_replica_count: int,
             traffic_percentage: int, sync: bool = True) -> None:
    del sync
    from google.cloud.aiplatform_v1.types import endpoint_service
    from google.cloud.aiplatform_v1.types import machine_resources
    traffic = {deployed: 0 for deployed in endpoint.deployed_ids()}
    if traffic and traffic_percentage < 100:
      # The SDK scales the others' shares (Endpoint._allocate_traffic).
      from google.cloud import aiplatform
      traffic = aiplatform.Endpoint._allocate_traffic(
          endpoint.traffic(), traffic_percentage)
    else:
      traffic['0'] = traffic_percentage
    request = endpoint_service.DeployModelRequest(
        endpoint=endpoint.resource_name,
        deployed_model={
            'model': self.versioned_resource_name,
            'dedicated_resources': machine_resources.DedicatedResources(
                machine_spec={'machine_type': machine_type},
                min_replica_count=min_replica_count,
                max_replica_count=max_replica_count)},
        traffic_split=traffic)
    _capture('deploy_model', request)


class _Endpoint:

  def __init__(self, resource_name: str):
    self.resource_name = resource_name

  def deployed_ids(self) -> List[str]:
    """Deployed model ids: `deploy_model_<n>` deploys id n."""
    undeployed = {request['deployed_model_id']
                  for request in captured('undeploy_model')}
    return [str(number) for number, request in enumerate(
        captured('deploy_model'), start=1)
            if request['endpoint'] == self.resource_name
            and str(number) not in undeployed]

  def traffic(self) -> Dict[str, int]:
    deploys = captured('deploy_model')
    split = {}
    for deployed in self.deployed_ids():
      shares = deploys[int(deployed) - 1]['traffic_split']
      split[deployed] = int(shares.get('0', 0))
    return split

  def list_models(self) -> List[Any]:
    return [type('DeployedModel', (), {'id': deployed})()
            for deployed in self.deployed_ids()]

  def undeploy(self, deployed_model_id: str, sync: bool = True) -> None:
    del sync
    from google.cloud.aiplatform_v1.types import endpoint_service
    _capture('undeploy_model', endpoint_service.UndeployModelRequest(
        endpoint=self.resource_name, deployed_model_id=deployed_model_id))


class FakeAiplatform:
  """The parts of `google.cloud.aiplatform` the Vertex Pusher uses."""

  def __init__(self):
    self.parent = ''

    fake = self

    class Model:

      @staticmethod
      def list(filter: str, order_by: str = '') -> List[_Model]:
        del order_by
        name = filter.split('"')[1]
        for number, request in enumerate(captured('upload_model'), start=1):
          if request['model']['display_name'] == name:
            return [_Model(request.get('parent_model') or
                           f'{fake.parent}/models/{number}', '1')]
        return []

      @staticmethod
      def upload(**kwargs: Any) -> _Model:
        from google.cloud import aiplatform
        from google.cloud.aiplatform_v1.types import model_service
        # Arguments the SDK does not take raise TypeError, as with the SDK.
        inspect.signature(aiplatform.Model.upload).bind(**kwargs)
        route = {}
        if kwargs.get('serving_container_predict_route'):
          route = {
              'predict_route': kwargs['serving_container_predict_route'],
              'health_route': kwargs['serving_container_health_route'],
              'ports': [{'container_port': port} for port in
                        kwargs['serving_container_ports']]}
        model = {
            'display_name': kwargs['display_name'],
            'artifact_uri': kwargs['artifact_uri'],
            'container_spec': {
                'image_uri': kwargs['serving_container_image_uri'], **route},
            'labels': kwargs['labels'],
            'version_aliases': kwargs['version_aliases'],
            'version_description': kwargs['version_description'],
        }
        request = model_service.UploadModelRequest(
            parent=fake.parent, model=model,
            parent_model=kwargs.get('parent_model') or '')
        number = _capture('upload_model', request)
        parent = kwargs.get('parent_model')
        if parent:
          version = 1 + sum(1 for r in captured('upload_model')
                            if r.get('parent_model') == parent)
          return _Model(parent, str(version))
        return _Model(f'{fake.parent}/models/{number}', '1')

    class Endpoint:

      @staticmethod
      def list(filter: str) -> List[_Endpoint]:
        name = filter.split('"')[1]
        for number, request in enumerate(captured('create_endpoint'),
                                         start=1):
          if request['endpoint']['display_name'] == name:
            return [_Endpoint(f'{fake.parent}/endpoints/{number}')]
        return []

      @staticmethod
      def create(display_name: str, project: str,
                 location: str) -> _Endpoint:
        from google.cloud.aiplatform_v1.types import endpoint_service
        parent = f'projects/{project}/locations/{location}'
        number = _capture('create_endpoint',
                          endpoint_service.CreateEndpointRequest(
                              parent=parent,
                              endpoint={'display_name': display_name}))
        return _Endpoint(f'{parent}/endpoints/{number}')

    self.Model = Model
    self.Endpoint = Endpoint

  def init(self, project: str, location: str) -> None:
    self.parent = f'projects/{project}/locations/{location}'


def install_if_requested() -> None:
  """Gives the Vertex Pusher the fake client when REQUESTS_DIR_ENV is set."""
  if os.environ.get(REQUESTS_DIR_ENV):
    fake = FakeAiplatform()
    fake_vertex.patch_module(
        PUSHER_MODULE,
        lambda module: setattr(module, '_aiplatform', lambda: fake))
