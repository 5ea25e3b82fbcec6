"""Runs the pipeline with LocalDagRunner and SQLite ML Metadata."""

import os
from typing import Any, Optional

import ml_metadata as mlmd
from tfx import v1 as tfx
from tfx.dsl.compiler import constants
from tfx.orchestration.portable import runtime_parameter_utils
from tfx.proto.orchestration import pipeline_pb2

from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.pipeline import create_pipeline


def metadata_path(config: PipelineConfig) -> str:
  """The SQLite ML Metadata file of a local pipeline root."""
  return config.metadata_path or os.path.join(config.pipeline_root,
                                              'metadata.sqlite')


def metadata_store(config: PipelineConfig) -> mlmd.MetadataStore:
  """The local run's ML Metadata store (read after a run)."""
  return mlmd.MetadataStore(
      tfx.orchestration.metadata.sqlite_metadata_connection_config(
          metadata_path(config)))


class _LocalDagRunner(tfx.orchestration.LocalDagRunner):
  """LocalDagRunner whose pipeline run id is given, not the time it
  starts, so that the caller can name the run's log and find its review
  page."""

  def __init__(self, run_id: str):
    super().__init__()
    self._run_id = run_id

  def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                  run_options: Optional[pipeline_pb2.RunOptions] = None,
                  **kwargs: Any) -> None:
    # LocalDagRunner then finds no run id parameter left to set.
    runtime_parameter_utils.substitute_runtime_parameter(
        pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: self._run_id})
    return super().run_with_ir(pipeline, run_options, **kwargs)


def run(config: PipelineConfig, run_id: str) -> None:
  """Runs the whole pipeline locally as run `run_id` (its `pipeline_run`
  context in ML Metadata); raises if a component fails."""
  os.makedirs(config.pipeline_root, exist_ok=True)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      metadata_path(config))
  _LocalDagRunner(run_id).run(create_pipeline(config, connection))
