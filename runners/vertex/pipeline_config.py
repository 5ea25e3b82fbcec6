"""The `PipelineConfig` that the Vertex pipeline is built from."""

import json
from typing import Any, Dict

from runners.vertex import dataflow
from runners.vertex import worker_pool
from runners.vertex.settings import IMAGE_DRIFT_SCHEMA_FILE
from runners.vertex.settings import IMAGE_SCHEMA_FILE
from runners.vertex.settings import VertexSettings
from tfx_pipeline import config as config_lib


def to_pipeline_config(settings: VertexSettings) -> config_lib.PipelineConfig:
  """The `PipelineConfig` of the Vertex pipeline (settings must be valid)."""
  return config_lib.PipelineConfig(
      pipeline_root=settings.pipeline_root,
      data_root=settings.data_root,
      pipeline_name=settings.pipeline_name,
      train_pattern=settings.train_pattern,
      eval_pattern=settings.eval_pattern,
      span=settings.span,
      experiment=settings.experiment,
      params_override=json.dumps(worker_pool.trainer_params_override(settings),
                                 sort_keys=True),
      train_steps=settings.train_steps,
      eval_steps=settings.eval_steps,
      materialize=settings.materialize,
      push_dir=settings.push_dir,
      pq_lower_bound=settings.pq_lower_bound,
      pq_regression_tolerance=settings.pq_regression_tolerance,
      warm_start=settings.warm_start,
      init_checkpoint=settings.init_checkpoint,
      beam_pipeline_args=dataflow.dataflow_beam_pipeline_args(settings),
      enable_cache=settings.enable_cache,
      schema_file=IMAGE_SCHEMA_FILE,
      drift_schema_file=settings.drift_schema_file or IMAGE_DRIFT_SCHEMA_FILE,
      allow_drift=settings.allow_drift,
      vertex_training=worker_pool.vertex_training_config(settings),
      vertex_registry=registry_config(settings))


def registry_config(settings: VertexSettings) -> Dict[str, Any]:
  """The Pusher's Model Registry settings (`vertex_pusher.registry_config`);
  the report is in the job's directory (`{job_dir}`)."""
  # Imported here: it loads TFX, which `compile-vertex --help` must not.
  from tfx_pipeline import vertex_pusher
  endpoint = None
  if settings.endpoint:
    endpoint = {'name': settings.endpoint,
                'machine_type': settings.serving_machine_type,
                'min_replicas': settings.min_replicas,
                'max_replicas': settings.max_replicas,
                'traffic_percent': settings.traffic_percent}
  return vertex_pusher.registry_config(
      settings.project, settings.region,
      settings.registry_model or settings.pipeline_name,
      settings.serving_image,
      {'pipeline': settings.pipeline_name,
       'experiment': settings.experiment},
      settings.data_root,
      '{job_dir}/ReviewReport_*/report/report.html',
      endpoint=endpoint)
