"""The drift nodes of the pipeline: PanopticStatisticsGen, the drift schema,
DriftValidator and DriftGate (wired by `tfx_pipeline.pipeline`)."""

import dataclasses
from typing import List

from tfx import v1 as tfx
from tfx.dsl.components.base.base_node import BaseNode

from schemas import DRIFT_SCHEMA_FILE, schema_path
from tfx_pipeline.drift import statistics_gen
from tfx_pipeline.drift import validator

DRIFT_SCHEMA_NODE = 'DriftSchemaGen'


@dataclasses.dataclass
class DriftNodes:
  """The nodes, and the statistics the Trainer stores as its baseline."""
  statistics_gen: BaseNode
  schema_gen: BaseNode
  validator: BaseNode
  gate: BaseNode

  @property
  def statistics(self):
    return self.statistics_gen.outputs['statistics']

  def all(self) -> List[BaseNode]:
    return [self.statistics_gen, self.schema_gen, self.validator, self.gate]


def drift_nodes(examples, baseline_model, drift_schema_file, allow_drift: bool
                ) -> DriftNodes:
  """The drift check of `examples` (raw) against `baseline_model` (the
  latest blessed model's channel)."""
  panoptic_statistics = statistics_gen.PanopticStatisticsGen(
      examples=examples).with_id('PanopticStatisticsGen')
  schema_gen = tfx.components.ImportSchemaGen(
      schema_file=drift_schema_file or schema_path(DRIFT_SCHEMA_FILE)
  ).with_id(DRIFT_SCHEMA_NODE)
  drift_validator = validator.DriftValidator(
      statistics=panoptic_statistics.outputs['statistics'],
      schema=schema_gen.outputs['schema'],
      baseline_model=baseline_model,
      allow_drift=int(allow_drift)).with_id('DriftValidator')
  gate = validator.DriftGate(
      drift=drift_validator.outputs['drift']).with_id('DriftGate')
  return DriftNodes(panoptic_statistics, schema_gen, drift_validator, gate)
