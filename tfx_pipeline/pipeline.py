"""The maskformer-tfx pipeline: component wiring only (runners run it)."""

from typing import List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode
from tfx.proto import example_gen_pb2

from schemas import RAW_SCHEMA_FILE, schema_path
from tfx_pipeline import data_validation
from tfx_pipeline.config import PipelineConfig


def create_components(config: PipelineConfig) -> List[BaseNode]:
  """The pipeline's components, in dependency order."""
  example_gen = tfx.components.ImportExampleGen(
      input_base=config.data_root,
      input_config=example_gen_pb2.Input(splits=[
          example_gen_pb2.Input.Split(name='train', pattern=config.train_pattern),
          example_gen_pb2.Input.Split(name='eval', pattern=config.eval_pattern),
      ]))
  schema_gen = tfx.components.ImportSchemaGen(
      schema_file=config.schema_file or schema_path(RAW_SCHEMA_FILE))
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'],
      custom_validation_config=data_validation.custom_validation_config())
  data_gate = data_validation.DataValidationGate(
      anomalies=example_validator.outputs['anomalies'])
  data_components = [example_gen, schema_gen, statistics_gen,
                     example_validator, data_gate]
  if config.data_validation_only:
    return data_components

  transform = tfx.components.Transform(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'],
      preprocessing_fn='transform_module.preprocessing_fn',
      custom_config={'output_size': config.output_size,
                     'num_segment_slots': config.num_segment_slots},
      materialize=config.materialize,
      # Statistics over 640×640 float images would cost more than the
      # transform itself; the raw data is already validated.
      disable_statistics=True)
  transform.add_upstream_node(data_gate)
  return data_components + [transform]


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config: Optional[object] = None
                    ) -> tfx.dsl.Pipeline:
  """Builds the TFX pipeline for `config`."""
  return tfx.dsl.Pipeline(
      pipeline_name=config.pipeline_name,
      pipeline_root=config.pipeline_root,
      components=create_components(config),
      enable_cache=config.enable_cache,
      metadata_connection_config=metadata_connection_config,
      beam_pipeline_args=list(config.beam_pipeline_args))
