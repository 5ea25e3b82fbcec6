"""ReviewReport: the TFX component that writes a run's review page.

Placed last in the pipeline (`tfx_pipeline.pipeline.create_components`), it
builds the page (`page.build_report_html`) from its input artifacts only:
no ML Metadata and no access to the pipeline root, so every run, local or
on Vertex AI Pipelines, gets `report.html` in its `report` output artifact.
Inputs after the data gate are optional: a data-validation-only pipeline
wires statistics, schema and anomalies only, and the model sections then
say why they are not available.
"""

import os
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.dsl.components.base import base_component
from tfx.dsl.components.base import base_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import component_spec
from tfx.types import standard_artifacts

from tfx_pipeline.drift.validator import DriftReport
from tfx_pipeline.report import local_root
from tfx_pipeline.report import page
from tfx_pipeline.report import run_record
from tfx_pipeline.report import vertex_job

PIPELINE_NAME_KEY = 'pipeline_name'
NUM_EXAMPLES_KEY = 'num_examples'
# Nodes without outputs that ran before the report (shown as complete): the
# data gate always, the drift gate when the report follows the Trainer.
_PASSED_GATE = 'DataValidationGate'
_PASSED_DRIFT_GATE = 'DriftGate'


class ReviewReportPage(types.Artifact):
  """A directory holding the review page `report.html` of a run."""
  # On Vertex the type name is the KFP schema title `<module>.<Class>`
  # (one dot), and the container imports the class from it: the package
  # `tfx_pipeline` exports this class under that name.
  TYPE_NAME = 'tfx_pipeline.ReviewReportPage'


_INPUT_TYPES = {
    'statistics': standard_artifacts.ExampleStatistics,
    'schema': standard_artifacts.Schema,
    'anomalies': standard_artifacts.ExampleAnomalies,
    'examples': standard_artifacts.Examples,
    'panoptic_statistics': standard_artifacts.ExampleStatistics,
    'drift': DriftReport,
    'transform_graph': standard_artifacts.TransformGraph,
    'transformed_examples': standard_artifacts.Examples,
    'model': standard_artifacts.Model,
    'model_run': standard_artifacts.ModelRun,
    'evaluation': standard_artifacts.ModelEvaluation,
    'blessing': standard_artifacts.ModelBlessing,
    'pushed_model': standard_artifacts.PushedModel,
}
# The data half always exists; the rest only in a pipeline with a model.
_REQUIRED_INPUTS = ('statistics', 'schema', 'anomalies')
assert set(_INPUT_TYPES) == set(run_record.COMPONENT_INPUTS)


def output_type_names() -> Dict[Tuple[str, str], str]:
  """{(node id, output key): artifact type name} of the report's inputs."""
  return {run_record.COMPONENT_INPUTS[name]: artifact_type.TYPE_NAME
          for name, artifact_type in _INPUT_TYPES.items()}


class ReviewReportSpec(types.ComponentSpec):
  """Inputs: the run's artifacts; output: the page."""
  PARAMETERS = {
      PIPELINE_NAME_KEY: component_spec.ExecutionParameter(type=str),
      NUM_EXAMPLES_KEY: component_spec.ExecutionParameter(type=int),
  }
  INPUTS = {
      name: component_spec.ChannelParameter(
          type=artifact_type, optional=name not in _REQUIRED_INPUTS)
      for name, artifact_type in _INPUT_TYPES.items()
  }
  OUTPUTS = {
      local_root.REPORT_OUTPUT: component_spec.ChannelParameter(
          type=ReviewReportPage),
  }


class Executor(base_executor.BaseExecutor):
  """Writes `report.html` into the output artifact from the inputs."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    artifacts = {name: (input_dict.get(name) or [None])[0]
                 for name in _INPUT_TYPES}
    output = output_dict[local_root.REPORT_OUTPUT][0]
    run_id = ''
    if self._context is not None:
      run_id = self._context.pipeline_run_id or ''
    # On Vertex the executor gets no run id: the job id is in the layout of
    # its output URI.
    run_id = run_id or vertex_job.job_id_of_output(output.uri)
    passed = [_PASSED_GATE]
    if artifacts['drift'] is not None and artifacts['model'] is not None:
      passed.append(_PASSED_DRIFT_GATE)
    run = run_record.from_artifacts(
        artifacts, exec_properties.get(PIPELINE_NAME_KEY) or '', run_id,
        passed_nodes=passed)
    html = page.build_report_html(
        run, int(exec_properties.get(NUM_EXAMPLES_KEY)
                 or page.DEFAULT_NUM_EXAMPLES))
    page.write_page(html, os.path.join(output.uri, local_root.REPORT_FILE))


class ReviewReport(base_component.BaseComponent):
  """The review page of the run, as an artifact (see the module docstring).

  Give every input the pipeline has; absent optional inputs (no model in a
  data-validation-only pipeline) make their sections say so.
  """
  SPEC_CLASS = ReviewReportSpec
  EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

  def __init__(self, statistics: types.BaseChannel,
               schema: types.BaseChannel, anomalies: types.BaseChannel,
               pipeline_name: str,
               num_examples: int = page.DEFAULT_NUM_EXAMPLES,
               **optional_inputs: Optional[types.BaseChannel]):
    unknown = set(optional_inputs) - set(_INPUT_TYPES)
    if unknown:
      raise TypeError(f'ReviewReport has no input(s) {sorted(unknown)}; '
                      f'inputs: {sorted(_INPUT_TYPES)}')
    spec = ReviewReportSpec(
        statistics=statistics, schema=schema, anomalies=anomalies,
        **{name: channel for name, channel in optional_inputs.items()
           if channel is not None},
        pipeline_name=pipeline_name, num_examples=num_examples,
        report=types.Channel(type=ReviewReportPage))
    super().__init__(spec=spec)
