"""What the review page is built from: the artifacts of one pipeline run.

A `PipelineRun` is either read from a local pipeline root's ML Metadata
(`mlmd_run.load_run`: every node's execution state, properties and
artifacts) or assembled from the input artifacts of the ReviewReport
component (`from_artifacts`: no ML Metadata and no pipeline root needed, so
it works on Vertex AI Pipelines too), or read from a Vertex job's task
outputs by its exit handler (`vertex_job.load_run`). The sections read
artifacts by node id and output key (`run.output('Trainer', 'model')`)
either way.
"""

import dataclasses
import datetime
from typing import Any, Dict, List, Mapping, Optional, Sequence

_DONE_STATES = ('COMPLETE', 'CACHED')
# The state of an execution that ML Metadata records as RUNNING in a run
# that is over (`mlmd_run.load_run`): its process died.
INTERRUPTED = 'INTERRUPTED'
# The pipeline's nodes in the order tfx_pipeline.pipeline wires them.
PIPELINE_NODES = ('ImportExampleGen', 'ImportSchemaGen', 'StatisticsGen',
                  'ExampleValidator', 'DataValidationGate',
                  'PanopticStatisticsGen', 'DriftSchemaGen',
                  'latest_blessed_model_resolver', 'DriftValidator',
                  'DriftGate', 'Transform', 'Trainer', 'Evaluator', 'Pusher',
                  'ReviewReport')
# (node id, output key) of each input of the ReviewReport component.
COMPONENT_INPUTS = {
    'examples': ('ImportExampleGen', 'examples'),
    'schema': ('ImportSchemaGen', 'schema'),
    'statistics': ('StatisticsGen', 'statistics'),
    'anomalies': ('ExampleValidator', 'anomalies'),
    'panoptic_statistics': ('PanopticStatisticsGen', 'statistics'),
    'drift': ('DriftValidator', 'drift'),
    'transform_graph': ('Transform', 'transform_graph'),
    'transformed_examples': ('Transform', 'transformed_examples'),
    'model': ('Trainer', 'model'),
    'model_run': ('Trainer', 'model_run'),
    'evaluation': ('Evaluator', 'evaluation'),
    'blessing': ('Evaluator', 'blessing'),
    'pushed_model': ('Pusher', 'pushed_model'),
}


class Unavailable(Exception):
  """A part of the page cannot be shown; the message says why."""


class ReportError(RuntimeError):
  """The report cannot be written at all (no metadata, unknown run)."""


@dataclasses.dataclass
class ArtifactRecord:
  """One ML Metadata artifact: its type name, URI and custom properties."""
  id: int
  type_name: str
  uri: str
  properties: Dict[str, Any]


@dataclasses.dataclass
class NodeRun:
  """The execution of one pipeline node in a run."""
  node_id: str
  state: str
  exec_properties: Dict[str, Any]
  inputs: Dict[str, List[ArtifactRecord]]
  outputs: Dict[str, List[ArtifactRecord]]

  @property
  def succeeded(self) -> bool:
    return self.state in _DONE_STATES


@dataclasses.dataclass
class PipelineRun:
  """What is known about one pipeline run.

  Attributes:
    pipeline_root: The pipeline root the run was read from: a local one's
      ML Metadata, or a Vertex job's task outputs (`vertex_job`); None:
      built from the ReviewReport component's input artifacts.
    pipeline_name: The pipeline's name.
    run_id: The pipeline run id.
    started: When the run started (None if unknown).
    nodes: {node id: its execution}.
    error: The exception that ended the run, if known.
    source: Where this record comes from, in words (for the page header).
  """
  pipeline_root: Optional[str]
  pipeline_name: str
  run_id: str
  started: Optional[datetime.datetime]
  nodes: Dict[str, NodeRun]
  error: Optional[str] = None
  source: str = ''

  def ordered_node_ids(self) -> List[str]:
    """The run's node ids in pipeline order (unknown ones last, by name)."""
    known = [node_id for node_id in PIPELINE_NODES if node_id in self.nodes]
    return known + sorted(set(self.nodes) - set(known))

  def failed_nodes(self) -> List[str]:
    return [node_id for node_id, node in self.nodes.items()
            if node.state == 'FAILED']

  def why_missing(self, node_id: str) -> str:
    """Why `node_id` has no usable outputs in this run."""
    error = f' ({self.error})' if self.error else ''
    node = self.nodes.get(node_id)
    if node is not None and node.state == 'FAILED':
      return f'{node_id} failed{error}'
    if node is not None and node.state == INTERRUPTED:
      return (f'{node_id} was interrupted: the run\'s process ended before '
              f'{node_id} finished')
    if node is not None and not node.succeeded:
      return f'{node_id} has not finished (state {node.state})'
    failed = self.failed_nodes()
    if failed:
      return (f'{node_id} did not run: the run stopped when {failed[0]} '
              'failed (see the top of the page)')
    if node is None:
      return (f'{node_id} is not part of this run (a data-validation-only '
              'run, e.g. `maskformer-tfx validate`, or one still running)')
    return f'{node_id} wrote no such output'

  def node(self, node_id: str) -> NodeRun:
    """The succeeded execution of `node_id`; Unavailable otherwise."""
    node = self.nodes.get(node_id)
    if node is None or not node.succeeded:
      raise Unavailable(self.why_missing(node_id))
    return node

  def output(self, node_id: str, key: str) -> ArtifactRecord:
    """The first `key` output artifact of `node_id`; Unavailable if none."""
    artifacts = self.node(node_id).outputs.get(key)
    if not artifacts:
      raise Unavailable(f'{node_id} wrote no {key!r} artifact')
    return artifacts[0]


def property_values(properties: Mapping[str, Any]) -> Dict[str, Any]:
  """Python values of an ML Metadata (custom_)properties map.

  A struct holding only `__value__` is that value: Vertex AI Pipelines
  passes custom properties such as a blessing's `blessed` that way.
  """
  values = {}
  for name, value in properties.items():
    kind = value.WhichOneof('value')
    if kind == 'struct_value' and set(value.struct_value.fields) == {
        '__value__'}:
      wrapped = value.struct_value.fields['__value__']
      values[name] = getattr(wrapped, wrapped.WhichOneof('kind'))
    elif kind == 'proto_value' or kind == 'struct_value':
      values[name] = str(getattr(value, kind))
    elif kind is not None:
      values[name] = getattr(value, kind)
  return values


def from_artifacts(artifacts: Mapping[str, Optional[Any]], pipeline_name: str,
                   run_id: str, passed_nodes: Sequence[str] = ()
                   ) -> PipelineRun:
  """A run of the ReviewReport component's input artifacts.

  Args:
    artifacts: {input name of `COMPONENT_INPUTS`: a TFX Artifact or None
      (an optional input the pipeline did not give)}.
    pipeline_name: The pipeline's name.
    run_id: The pipeline run id ('' if unknown).
    passed_nodes: Nodes without outputs the component ran after (e.g. the
      DataValidationGate), shown as complete.
  """
  nodes: Dict[str, NodeRun] = {}
  for node_id in passed_nodes:
    nodes[node_id] = NodeRun(node_id, 'COMPLETE', {}, {}, {})
  for name, artifact in artifacts.items():
    if artifact is None:
      continue
    node_id, key = COMPONENT_INPUTS[name]
    node = nodes.setdefault(node_id, NodeRun(node_id, 'COMPLETE', {}, {}, {}))
    properties = {
        **property_values(artifact.mlmd_artifact.properties),
        **property_values(artifact.mlmd_artifact.custom_properties)}
    node.outputs.setdefault(key, []).append(ArtifactRecord(
        id=artifact.id, type_name=artifact.type_name, uri=artifact.uri,
        properties=properties))
  return PipelineRun(
      pipeline_root=None, pipeline_name=pipeline_name, run_id=run_id,
      started=None, nodes=nodes,
      source='the input artifacts of the ReviewReport component')
