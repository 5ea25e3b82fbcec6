"""Vertex Pusher: blessed models as versions of one Model Registry model.

TFX's Vertex Pusher (`tfx.extensions.google_cloud_ai_platform.pusher`)
uploads every push as a new Model resource and leaves older deployments on
the endpoint. This executor, on top of `tfx_pipeline.pusher` (the filesystem
push: atomic numeric versions under the gs:// push directory, never the same
model twice):

* uploads the pushed version directory as a new version of the registry
  model named `display_name` (`parent_model` = that model when it exists),
  the default version, with the aliases `blessed` and `run-<run id>`
  (Vertex moves an alias to the version that takes it), labels
  {pipeline, experiment, run} and a description with PQ/SQ/RQ
  (all/things/stuff), the eval image count, the data root and the review
  report's location;
* uploads nothing for an unblessed model, and nothing for a model already
  pushed (a cached rerun): the version directory records the registry
  version it was uploaded as (`REGISTRY_FILE`), so an upload interrupted
  after the copy is retried and a finished one is not repeated;
* optionally deploys the version to an endpoint (created if missing) with
  `traffic_percent` P: P = 100 takes all traffic and the previously deployed
  models are undeployed once it serves; P < 100 is a canary beside them.

`pushed_destination` is the registry version's resource name
(`projects/.../models/ID@VERSION`), as TFX's Vertex Pusher sets it.
Settings come from `custom_config[REGISTRY_KEY]` (`registry_config`).
"""

import os
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.dsl.io import fileio
from tfx.extensions.google_cloud_ai_platform.pusher import (
    executor as vertex_executor)
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import json_utils

from tfx_pipeline import pusher
from tfx_pipeline import run_summary

REGISTRY_KEY = 'vertex_registry'
REGISTRY_FILE = 'VERTEX_MODEL_VERSION'
BLESSED_ALIAS = 'blessed'
_DESCRIPTION_GROUPS = (('all', ''), ('things', '_things'),
                       ('stuff', '_stuff'))


def registry_config(project: str, region: str, display_name: str,
                    serving_image: str, labels: Dict[str, str],
                    data_root: str, report_location: str = '',
                    serving_route: Optional[Dict[str, Any]] = None,
                    endpoint: Optional[Dict[str, Any]] = None
                    ) -> Dict[str, Any]:
  """The `custom_config[REGISTRY_KEY]` of a Vertex push.

  Args:
    report_location: Where the run's review report is; `{job_dir}` stands
      for the Vertex job's directory.
    serving_route: Optional {predict_route, health_route, port} of a custom
      serving container.
    endpoint: Optional {name, machine_type, min_replicas, max_replicas,
      traffic_percent}.
  """
  return {'project': project, 'region': region,
          'display_name': display_name, 'serving_image': serving_image,
          'labels': dict(labels), 'data_root': data_root,
          'report_location': report_location,
          'serving_route': serving_route or {}, 'endpoint': endpoint or {}}


def _aiplatform():
  from google.cloud import aiplatform
  return aiplatform


def evaluation_uri(blessing_uri: str) -> Optional[str]:
  """The Evaluator's `evaluation` artifact beside its `blessing`: Vertex
  writes `<task dir>/blessing` and `<task dir>/evaluation`, the local
  runner `Evaluator/blessing/<id>` and `Evaluator/evaluation/<id>`."""
  blessing_uri = blessing_uri.rstrip('/')
  parent, name = os.path.split(blessing_uri)
  candidates = [os.path.join(parent, 'evaluation')]
  grandparent, kind = os.path.split(parent)
  if kind == 'blessing':
    candidates.append(os.path.join(grandparent, 'evaluation', name))
  return next((uri for uri in candidates if fileio.isdir(uri)), None)


def version_description(metrics: Dict[str, float], data_root: str,
                        report_location: str) -> str:
  """The registry version's description: PQ/SQ/RQ, eval images, data."""
  parts = []
  for group, suffix in _DESCRIPTION_GROUPS:
    values = ' '.join(
        f'{quantity.upper()} {100 * metrics[quantity + suffix]:.2f}'
        for quantity in ('pq', 'sq', 'rq') if quantity + suffix in metrics)
    if values:
      parts.append(f'{group}: {values}')
  if 'example_count' in metrics:
    parts.append(f'eval images: {int(metrics["example_count"])}')
  parts.append(f'data: {data_root}')
  if report_location:
    parts.append(f'review report: {report_location}')
  return '; '.join(parts)


def _label_value(value: str) -> str:
  """A Vertex label value: lowercase letters, digits, '-' and '_', at
  most 63 characters."""
  cleaned = ''.join(c if c.isalnum() or c in '-_' else '-'
                    for c in str(value).lower())
  return cleaned[:63]


class Executor(vertex_executor.Executor):
  """TFX's Vertex Pusher with registry versions and one endpoint."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    custom_config = json_utils.loads(
        exec_properties.get('custom_config', 'null')) or {}
    settings = custom_config.get(REGISTRY_KEY)
    if not settings:
      super().Do(input_dict, output_dict, exec_properties)
      return
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    if not self.CheckBlessing(input_dict):
      self._MarkNotPushed(model_push)
      return
    filesystem = pusher.filesystem_destination(exec_properties)
    if filesystem is None:
      raise ValueError('The Vertex push needs a filesystem push destination '
                       '(the gs:// directory the registry versions read).')
    base_directory = filesystem.base_directory
    model_path = self.GetModelPath(input_dict)
    pusher.remove_interrupted_pushes(base_directory)
    version_dir = pusher.version_holding(base_directory, model_path)
    if version_dir and fileio.exists(os.path.join(version_dir,
                                                  REGISTRY_FILE)):
      with fileio.open(os.path.join(version_dir, REGISTRY_FILE), 'r') as f:
        previous = f.read().strip()
      logging.info('Model %s was already pushed as %s; not pushing it again.',
                   model_path, previous)
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(pusher.ALREADY_PUSHED_PROPERTY,
                                            previous)
      return
    if not version_dir:
      version_dir = os.path.join(
          base_directory, pusher.push_version(model_path, base_directory))
    model = self._upload(settings, version_dir, input_dict, model_push.uri)
    with fileio.open(os.path.join(version_dir, REGISTRY_FILE), 'w') as f:
      f.write(model.versioned_resource_name)
    # The pushed_model artifact keeps a copy of the model, as TFX's does.
    io_utils.copy_dir(model_path, model_push.uri)
    endpoint = settings.get('endpoint') or {}
    if endpoint.get('name'):
      deployed = self._deploy(settings, endpoint, model)
      model_push.set_string_custom_property(pusher.ENDPOINT_PROPERTY,
                                            deployed)
    self._MarkPushed(model_push,
                     pushed_destination=model.versioned_resource_name,
                     pushed_version=str(model.version_id))

  def _upload(self, settings: Dict[str, Any], version_dir: str,
              input_dict: Dict[str, List[types.Artifact]],
              output_uri: str) -> Any:
    aiplatform = _aiplatform()
    aiplatform.init(project=settings['project'], location=settings['region'])
    display_name = settings['display_name']
    existing = aiplatform.Model.list(
        filter=f'display_name="{display_name}"', order_by='create_time')
    parent = existing[0].resource_name if existing else None
    blessing = artifact_utils.get_single_instance(
        input_dict[standard_component_specs.MODEL_BLESSING_KEY])
    metrics = {}
    evaluation = evaluation_uri(blessing.uri)
    if evaluation:
      by_model = run_summary.metric_values_by_model(evaluation)
      metrics = by_model.get('candidate', by_model.get('', {}))
    # Vertex writes a task's outputs under PIPELINE_ROOT/<project number>/
    # <job id>/<task>_<id>/: the job's directory and id.
    job_dir = os.path.dirname(os.path.dirname(output_uri.rstrip('/')))
    run_id = ((self._context.pipeline_run_id if self._context else None)
              or os.path.basename(job_dir))
    labels = {key: _label_value(value)
              for key, value in settings.get('labels', {}).items()}
    if run_id and 'run' not in labels:
      labels['run'] = _label_value(run_id)
    report = settings.get('report_location', '').replace(
        '{job_dir}', job_dir)
    aliases = [BLESSED_ALIAS]
    if labels.get('run'):
      # An alias: letters, digits and '-', at most 128 characters.
      aliases.append(f'run-{labels["run"]}'.replace('_', '-')[:128])
    route = settings.get('serving_route') or {}
    kwargs = {}
    if route:
      kwargs = {'serving_container_predict_route': route['predict_route'],
                'serving_container_health_route': route['health_route'],
                'serving_container_ports': [int(route['port'])]}
    logging.info('Uploading %s as a version of %s (parent %s).', version_dir,
                 display_name, parent)
    return aiplatform.Model.upload(
        display_name=display_name, artifact_uri=version_dir,
        serving_container_image_uri=settings['serving_image'],
        parent_model=parent, is_default_version=True,
        version_aliases=aliases, labels=labels,
        version_description=version_description(
            metrics, settings.get('data_root', ''), report),
        **kwargs)

  def _deploy(self, settings: Dict[str, Any], endpoint: Dict[str, Any],
              model: Any) -> str:
    aiplatform = _aiplatform()
    found = aiplatform.Endpoint.list(
        filter=f'display_name="{endpoint["name"]}"')
    target = found[0] if found else aiplatform.Endpoint.create(
        display_name=endpoint['name'], project=settings['project'],
        location=settings['region'])
    previous = [deployed.id for deployed in target.list_models()]
    percent = int(endpoint.get('traffic_percent', 100))
    model.deploy(endpoint=target,
                 machine_type=endpoint['machine_type'],
                 min_replica_count=int(endpoint['min_replicas']),
                 max_replica_count=int(endpoint['max_replicas']),
                 traffic_percentage=percent, sync=True)
    if percent == 100:
      # `deploy` returns once the new version serves all traffic.
      for deployed_id in previous:
        logging.info('Undeploying %s from %s.', deployed_id,
                     target.resource_name)
        target.undeploy(deployed_model_id=deployed_id, sync=True)
    return target.resource_name
