"""A fake Vertex AI JobServiceClient for the Trainer's custom job.

TFX's `google_cloud_ai_platform` Trainer (training_clients.VertexJobClient)
submits a Vertex AI CustomJob through `gapic.JobServiceClient` and polls it.
In a rehearsal the task process gets this client instead (installed by
`container_site/sitecustomize.py` when CAPTURE_DIR_ENV is set): it checks
the request with the Vertex AI API types as the real client does, writes the
CustomJob to CAPTURE_DIR_ENV/custom_job_<n>.json, prints its worker pool
spec, and runs each worker pool's container command here, the image's python
replaced by this interpreter and the accelerator runtime by the CPU one.
"""

import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
from typing import Any, Callable, Dict, Mapping

CAPTURE_DIR_ENV = 'MASKFORMER_REHEARSAL_CAPTURE_DIR'
TRAINING_CLIENTS_MODULE = 'tfx.extensions.google_cloud_ai_platform.training_clients'


def _print(line: str) -> None:
  print(f'[rehearse-vertex] {line}', flush=True)


def worker_command(container_spec: Mapping[str, Any],
                   where: str) -> tuple:
  """The worker pool's container command as run here, and the notes."""
  from runners.vertex_rehearsal import substitutions
  command = list(container_spec.get('command', [])) + list(
      container_spec.get('args', []))
  command, notes = substitutions.interpreter(command, where)
  if '--exec-properties' in command:
    i = command.index('--exec-properties') + 1
    command[i], changed = substitutions.trainer_exec_properties(command[i],
                                                                where)
    notes.extend(changed)
  return command, notes


class FakeJobServiceClient:
  """Stands in for google.cloud.aiplatform.gapic.JobServiceClient."""

  def __init__(self, client_options: Any = None, **unused_kwargs):
    self.endpoint = (client_options or {}).get('api_endpoint')
    self._jobs: Dict[str, Any] = {}

  def create_custom_job(self, parent: str, custom_job: Mapping[str, Any],
                        **unused_kwargs) -> Any:
    from google.cloud.aiplatform_v1.types import job_service
    from google.cloud.aiplatform_v1.types import job_state
    # The request the real client would send: unknown fields or wrong types
    # in the CustomJob raise here as they would against the API.
    request = job_service.CreateCustomJobRequest(parent=parent,
                                                 custom_job=custom_job)
    capture_dir = os.environ[CAPTURE_DIR_ENV]
    os.makedirs(capture_dir, exist_ok=True)
    number = len(os.listdir(capture_dir)) + 1
    name = f'{parent}/customJobs/{number}'
    with open(os.path.join(capture_dir, f'custom_job_{number}.json'), 'w',
              encoding='utf-8') as f:
      json.dump({'parent': parent, 'endpoint': self.endpoint,
                 'custom_job': custom_job}, f, indent=1, sort_keys=True,
                default=str)
    pools = list(custom_job['job_spec']['worker_pool_specs'])
    _print(f'Vertex AI Training -> fake client: captured CustomJob '
           f'{custom_job.get("display_name")!r} for {parent} ({self.endpoint})')
    state = job_state.JobState.JOB_STATE_SUCCEEDED
    for index, pool in enumerate(pools):
      where = f'custom job worker pool {index}'
      shown = {key: value for key, value in pool.items()
               if key != 'container_spec'}
      shown['container_spec'] = {
          key: value for key, value in pool['container_spec'].items()
          if key not in ('command', 'args')}
      _print(f'{where}: {json.dumps(shown, sort_keys=True)}')
      if int(pool.get('replica_count', 1)) != 1:
        _print(f'{where}: {pool.get("replica_count")} replicas; the rehearsal '
               'runs one.')
      _print(f'{where}: image {pool["container_spec"].get("image_uri")} -> '
             'this project\'s .venv')
      command, notes = worker_command(pool['container_spec'], where)
      for note in notes:
        _print(note)
      env = dict(os.environ)
      env.pop(CAPTURE_DIR_ENV, None)
      env.update({item['name']: item['value']
                  for item in pool['container_spec'].get('env', [])})
      _print(f'{where}: running its container command '
             f'({" ".join(command[:4])} ...)')
      returncode = subprocess.run(command, env=env, check=False).returncode
      _print(f'{where}: exited {returncode}')
      if returncode != 0:
        state = job_state.JobState.JOB_STATE_FAILED
        break
    from google.cloud.aiplatform_v1.types import custom_job as custom_job_types
    job = custom_job_types.CustomJob(request.custom_job)
    job.name = name
    job.state = state
    self._jobs[name] = job
    return job

  def get_custom_job(self, name: str, **unused_kwargs) -> Any:
    return self._jobs[name]


class PatchAfterImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
  """Calls `patch(module)` once the module `name` is imported."""

  def __init__(self, name: str, patch: Callable[[Any], None]):
    self._name = name
    self._patch = patch

  def find_spec(self, fullname, path, target=None):
    if fullname != self._name:
      return None
    sys.meta_path.remove(self)
    try:
      spec = importlib.util.find_spec(fullname)
    finally:
      sys.meta_path.insert(0, self)
    self._loader = spec.loader
    spec.loader = self
    return spec

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    self._loader.exec_module(module)
    self._patch(module)


def patch_module(name: str, patch: Callable[[Any], None]) -> None:
  """`patch(module)` now if the module is imported, else once it is."""
  if name in sys.modules:
    patch(sys.modules[name])
  else:
    sys.meta_path.insert(0, PatchAfterImport(name, patch))


class _FakeGapic:
  JobServiceClient = FakeJobServiceClient


def install() -> None:
  """Makes TFX's Vertex training client use FakeJobServiceClient."""
  patch_module(TRAINING_CLIENTS_MODULE,
               lambda module: setattr(module, 'gapic', _FakeGapic()))


def install_if_requested() -> None:
  if os.environ.get(CAPTURE_DIR_ENV):
    install()
