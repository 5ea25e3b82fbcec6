"""The maskformer-tfx pipeline: component wiring only (runners run it)."""

from typing import List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.base.base_node import BaseNode

from schemas import RAW_SCHEMA_FILE, schema_path
from tfx_pipeline import data_validation
from tfx_pipeline.drift import nodes as drift_nodes
from tfx_pipeline.drift import trainer as drift_trainer
from tfx_pipeline import eval_config
from tfx_pipeline import pusher as pusher_lib
from tfx_pipeline import vertex_pusher
from tfx_pipeline import spans
from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.report import component as report_component


def create_components(config: PipelineConfig) -> List[BaseNode]:
  """The pipeline's components, in dependency order."""
  example_gen = tfx.components.ImportExampleGen(
      input_base=config.data_root,
      input_config=spans.input_config(config.train_pattern,
                                      config.eval_pattern),
      range_config=spans.range_config(config.span))
  schema_gen = tfx.components.ImportSchemaGen(
      schema_file=config.schema_file or schema_path(RAW_SCHEMA_FILE))
  statistics_gen = tfx.components.StatisticsGen(
      examples=example_gen.outputs['examples'],
      schema=schema_gen.outputs['schema'])
  example_validator = tfx.components.ExampleValidator(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'])
  data_gate = data_validation.DataValidationGate(
      statistics=statistics_gen.outputs['statistics'],
      schema=schema_gen.outputs['schema'],
      anomalies=example_validator.outputs['anomalies'])
  data_components = [example_gen, schema_gen, statistics_gen,
                     example_validator, data_gate]
  report_inputs = dict(statistics=statistics_gen.outputs['statistics'],
                       schema=schema_gen.outputs['schema'],
                       anomalies=example_validator.outputs['anomalies'],
                       examples=example_gen.outputs['examples'],
                       pipeline_name=config.pipeline_name)
  if config.data_validation_only:
    # The review page of the data half (runs only when the gate passed).
    report = report_component.ReviewReport(**report_inputs)
    report.add_upstream_node(data_gate)
    return data_components + [report]

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

  trainer_config = {
      'experiment': config.experiment,
      'params_override': config.params_override,
      'output_size': config.output_size,
      'num_segment_slots': config.num_segment_slots,
      'materialized': config.materialize,
      # Stable across executions: an interrupted training of the same
      # config and inputs resumes there (trainer_module.training_checkpoints).
      'checkpoint_dir': f'{config.pipeline_root.rstrip("/")}/checkpoints',
      'warm_start': config.warm_start,
  }
  if config.init_checkpoint:
    trainer_config['init_checkpoint'] = config.init_checkpoint
  # The last blessed model: the Evaluator's baseline and, with warm start,
  # the Trainer's base_model (so ML Metadata records what it started from).
  baseline_resolver = tfx.dsl.Resolver(
      strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
      model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
      model_blessing=tfx.dsl.Channel(
          type=tfx.types.standard_artifacts.ModelBlessing),
  ).with_id('latest_blessed_model_resolver')
  # The new span's panoptic statistics against those the last blessed model
  # was trained on (stored in it by the Trainer); drift stops the run here.
  drift = drift_nodes.drift_nodes(
      example_gen.outputs['examples'], baseline_resolver.outputs['model'],
      config.drift_schema_file, config.allow_drift)
  # It decodes every mask: only data the gate passed (as for Transform).
  drift.statistics_gen.add_upstream_node(data_gate)
  trainer_args = dict(
      run_fn='trainer_module.run_fn.run_fn',
      statistics=drift.statistics,
      examples=(transform.outputs['transformed_examples']
                if config.materialize else example_gen.outputs['examples']),
      transform_graph=transform.outputs['transform_graph'],
      train_args=tfx.proto.TrainArgs(num_steps=config.train_steps),
      eval_args=tfx.proto.EvalArgs(num_steps=config.eval_steps))
  if config.warm_start:
    trainer_args['base_model'] = baseline_resolver.outputs['model']
  trainer = drift_trainer.Trainer(
      custom_config={**trainer_config, **(config.vertex_training or {})},
      on_vertex=bool(config.vertex_training), **trainer_args).with_id('Trainer')
  trainer.add_upstream_node(drift.gate)

  evaluator = tfx.components.Evaluator(
      examples=example_gen.outputs['examples'],
      model=trainer.outputs['model'],
      baseline_model=baseline_resolver.outputs['model'],
      eval_config=eval_config.eval_config(config.pq_lower_bound,
                                         config.pq_regression_tolerance),
      example_splits=['eval'])
  # Never pushes the same model twice (e.g. a cached rerun); on Vertex
  # also uploads it as a Model Registry version.
  registry = ({'custom_config': {
      vertex_pusher.REGISTRY_KEY: config.vertex_registry}}
              if config.vertex_registry else {})
  pusher = tfx.components.Pusher(
      model=trainer.outputs['model'],
      model_blessing=evaluator.outputs['blessing'],
      push_destination=tfx.proto.PushDestination(
          filesystem=tfx.proto.PushDestination.Filesystem(
              base_directory=config.push_dir)),
      custom_executor_spec=executor_spec.ExecutorClassSpec(
          vertex_pusher.Executor if registry else pusher_lib.Executor),
      **registry)
  # Last: the review page of the run, from these artifacts only.
  transform_outputs = {'transform_graph': transform.outputs['transform_graph']}
  if config.materialize:
    transform_outputs['transformed_examples'] = transform.outputs[
        'transformed_examples']
  report = report_component.ReviewReport(
      model=trainer.outputs['model'],
      model_run=trainer.outputs['model_run'],
      evaluation=evaluator.outputs['evaluation'],
      blessing=evaluator.outputs['blessing'],
      pushed_model=pusher.outputs['pushed_model'],
      panoptic_statistics=drift.statistics,
      drift=drift.validator.outputs['drift'], **transform_outputs,
      **report_inputs)
  report.add_upstream_node(data_gate)
  return data_components + [transform, baseline_resolver, *drift.all(),
                            trainer, evaluator, pusher, report]


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
