"""Runs the pipeline with LocalDagRunner and SQLite ML Metadata."""

import os

import ml_metadata as mlmd
from tfx import v1 as tfx

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


def run(config: PipelineConfig) -> None:
  """Runs the whole pipeline locally; raises if a component fails."""
  os.makedirs(config.pipeline_root, exist_ok=True)
  connection = tfx.orchestration.metadata.sqlite_metadata_connection_config(
      metadata_path(config))
  tfx.orchestration.LocalDagRunner().run(create_pipeline(config, connection))
