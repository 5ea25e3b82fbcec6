"""The Trainer that keeps, inside the model it exports, the statistics of the
data it was trained on: the baseline the DriftValidator compares later spans
with, found from the model alone (the latest-blessed-model resolver's output),
locally and on Vertex.

`Trainer` is TFX's Trainer with one more optional input, `statistics`
(PanopticStatisticsGen's); its executors train as TFX's (locally, or as a
Vertex AI training job) and then copy every split's FeatureStats.pb into
`<model>/Format-Serving/assets.extra/panoptic_statistics/Split-<split>/`.
The module file's `run_fn` is unchanged.
"""

import os
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tfx import types
from tfx.components.trainer import component as trainer_component
from tfx.components.trainer import executor as trainer_executor
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import executor_spec
from tfx.extensions.google_cloud_ai_platform.trainer import (
    executor as vertex_trainer_executor)
from tfx.proto import trainer_pb2
from tfx.types import standard_artifacts
from tfx.types import standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from tfx_pipeline.drift import validator

STATISTICS_KEY = 'statistics'


class TrainerSpec(standard_component_specs.TrainerSpec):
  """TFX's TrainerSpec with the optional `statistics` input."""
  INPUTS = {
      **standard_component_specs.TrainerSpec.INPUTS,
      STATISTICS_KEY: ChannelParameter(
          type=standard_artifacts.ExampleStatistics, optional=True),
  }


def store_statistics(input_dict: Dict[str, List[types.Artifact]],
                     output_dict: Dict[str, List[types.Artifact]]) -> None:
  """Copies the input statistics' FeatureStats.pb files into the model."""
  statistics = input_dict.get(STATISTICS_KEY) or []
  if not statistics:
    return
  model, = output_dict[standard_component_specs.MODEL_KEY]
  target = os.path.join(model.uri, validator.BASELINE_DIR)
  source = statistics[0].uri
  for name in tf.io.gfile.listdir(source):
    name = name.rstrip('/')
    stats_file = os.path.join(source, name, 'FeatureStats.pb')
    if name.startswith('Split-') and tf.io.gfile.exists(stats_file):
      tf.io.gfile.makedirs(os.path.join(target, name))
      destination = os.path.join(target, name, 'FeatureStats.pb')
      tf.io.gfile.copy(stats_file, destination + '.partial', overwrite=True)
      tf.io.gfile.rename(destination + '.partial', destination,
                         overwrite=True)


class Executor(trainer_executor.GenericExecutor):
  """TFX's generic Trainer executor, then `store_statistics`."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    store_statistics(input_dict, output_dict)


class VertexExecutor(vertex_trainer_executor.GenericExecutor):
  """TFX's Vertex AI training-job executor, then `store_statistics`."""

  def Do(self, input_dict, output_dict, exec_properties) -> None:
    super().Do(input_dict, output_dict, exec_properties)
    store_statistics(input_dict, output_dict)


class Trainer(trainer_component.Trainer):
  """TFX's Trainer (run_fn form) plus the optional `statistics` input."""

  SPEC_CLASS = TrainerSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, examples: types.BaseChannel, run_fn: str,
               train_args: trainer_pb2.TrainArgs,
               eval_args: trainer_pb2.EvalArgs,
               custom_config: Dict[str, Any],
               transform_graph: Optional[types.BaseChannel] = None,
               base_model: Optional[types.BaseChannel] = None,
               statistics: Optional[types.BaseChannel] = None,
               on_vertex: bool = False):
    spec = TrainerSpec(
        examples=examples, transform_graph=transform_graph,
        base_model=base_model, statistics=statistics,
        train_args=train_args, eval_args=eval_args, run_fn=run_fn,
        custom_config=json_utils.dumps(custom_config),
        model=types.Channel(type=standard_artifacts.Model),
        model_run=types.Channel(type=standard_artifacts.ModelRun))
    base_component.BaseComponent.__init__(
        self, spec=spec, custom_executor_spec=(
            executor_spec.ExecutorClassSpec(VertexExecutor)
            if on_vertex else None))
