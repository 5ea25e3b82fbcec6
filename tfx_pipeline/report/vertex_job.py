"""A Vertex AI Pipelines job, read from what it wrote under its pipeline root.

Vertex AI Pipelines keeps each task's outputs under the job's directory:
`{pipeline root}/{project number}/{job id}/{task name}_{task id}/`, with one
directory per output artifact (named by its output key) and
`executor_output.json`, the ExecutorOutput JSON in which TFX's Vertex
entrypoint records the task's output artifacts (URI and metadata such as
`blessed`) when the task succeeds. Source: TFX 1.16
`tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py`
("Format {pipelineJob.runtimeConfig.gcsOutputDirectory}/{project_number}
/{pipeline_job_user_id}/{task_name}_{task_uuid}/executor_output.json"); our
rehearsal (`runners/vertex_rehearsal/executor_input.py`) lays a job out the
same way.

The review page of a job that stopped early (the ReviewReport component
never ran) is built from that layout by the exit handler
(`exit_handler.py`), which Vertex runs after the pipeline with the job's
final status (KFP's PipelineTaskFinalStatus).
"""

import dataclasses
import json
import os
import re
from typing import Any, Dict, List, Optional

from tfx_pipeline.report import run_record

EXECUTOR_OUTPUT_FILE = 'executor_output.json'
# Nodes whose tasks run inside Vertex itself and leave no directory.
_NO_DIRECTORY = ('latest_blessed_model_resolver',)


@dataclasses.dataclass(frozen=True)
class FinalStatus:
  """The job's final status as Vertex passes it to an exit handler.

  Attributes:
    state: 'SUCCEEDED', 'FAILED', 'CANCELLED', ... (KFP PipelineTaskState).
    job_id: The pipeline job id (last part of the job's resource name).
    resource_name: projects/P/locations/L/pipelineJobs/JOB_ID.
    error: The job's error message ('' if none).
  """
  state: str
  job_id: str
  resource_name: str
  error: str

  @property
  def succeeded(self) -> bool:
    return self.state == 'SUCCEEDED'


def parse_final_status(text: str) -> FinalStatus:
  """The FinalStatus of the JSON string of a KFP PipelineTaskFinalStatus.

  Raises:
    run_record.ReportError: not such a JSON object.
  """
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  status = pipeline_spec_pb2.PipelineTaskFinalStatus()
  try:
    json_format.Parse(text, status, ignore_unknown_fields=True)
  except json_format.ParseError as error:
    raise run_record.ReportError(
        f'The final status Vertex passed is not a PipelineTaskFinalStatus '
        f'JSON object ({error}): {text[:300]!r}') from None
  resource_name = status.pipeline_job_resource_name
  job_id = (resource_name.rstrip('/').rsplit('/', 1)[-1]
            or status.pipeline_job_name)
  if not job_id:
    raise run_record.ReportError(
        f'The final status Vertex passed names no pipeline job: {text[:300]!r}')
  return FinalStatus(state=status.state, job_id=job_id,
                     resource_name=resource_name, error=status.error.message)


def job_id_of_output(uri: str) -> str:
  """The job id in a Vertex output artifact URI
  (`.../{project number}/{job id}/{task}_{task id}/{output key}`); '' for
  another layout (a local run's)."""
  task_dir = os.path.dirname(uri.rstrip('/'))
  job_dir = os.path.dirname(task_dir)
  if not (re.fullmatch(r'[\w-]+_(-?\d+|[0-9a-f]{8,})',
                       os.path.basename(task_dir)) and
          os.path.basename(os.path.dirname(job_dir)).isdigit()):
    return ''
  return os.path.basename(job_dir)


def find_job_root(pipeline_root: str, job_id: str) -> str:
  """`{pipeline root}/{project number}/{job id}` of the job.

  Raises:
    run_record.ReportError: no such directory.
  """
  import tensorflow as tf
  pattern = f'{pipeline_root.rstrip("/")}/*/{job_id}'
  found = sorted(tf.io.gfile.glob(pattern))
  if not found:
    raise run_record.ReportError(
        f'No outputs of job {job_id} under {pipeline_root} (looked for '
        f'{pattern}): no task of the job wrote anything.')
  return found[0]


def task_dirs(job_root: str) -> Dict[str, str]:
  """{task name: its directory} of every task directory of the job."""
  import tensorflow as tf
  dirs = {}
  for name in sorted(tf.io.gfile.listdir(job_root)):
    name = name.rstrip('/')
    if '_' in name and tf.io.gfile.isdir(os.path.join(job_root, name)):
      dirs[name.rsplit('_', 1)[0]] = os.path.join(job_root, name)
  return dirs


def _metadata_value(value: Any) -> Any:
  if isinstance(value, dict) and set(value) == {'__value__'}:
    return value['__value__']
  return value


def _outputs(task_dir: str, node_id: str
             ) -> Optional[Dict[str, List[run_record.ArtifactRecord]]]:
  """The task's output artifacts from its executor output (None: the task
  did not finish)."""
  import tensorflow as tf
  from tfx_pipeline.report import component
  path = os.path.join(task_dir, EXECUTOR_OUTPUT_FILE)
  if not tf.io.gfile.exists(path):
    return None
  with tf.io.gfile.GFile(path, 'r') as f:
    try:
      executor_output = json.load(f)
    except json.JSONDecodeError as error:
      raise run_record.ReportError(f'{path} is not JSON: {error}') from None
  type_names = component.output_type_names()
  outputs = {}
  for key, listed in executor_output.get('artifacts', {}).items():
    outputs[key] = [run_record.ArtifactRecord(
        id=0, type_name=type_names.get((node_id, key), ''),
        uri=artifact.get('uri') or os.path.join(task_dir, key),
        properties={name: _metadata_value(value) for name, value in
                    artifact.get('metadata', {}).items()})
                    for artifact in listed.get('artifacts', [])]
  return outputs


def load_run(pipeline_root: str, status: FinalStatus, pipeline_name: str,
             skip_tasks: tuple = ()) -> run_record.PipelineRun:
  """The run of a Vertex job from its task directories and final status.

  A task whose `executor_output.json` exists completed. When the job did not
  succeed, the nodes the job's error message names failed; else those that
  left a task directory without finishing; else the first pipeline node (in
  pipeline order) that did not complete.

  A job that wrote nothing (e.g. its first step failed) gives a run of no
  completed node, its source saying so.
  """
  try:
    job_root = find_job_root(pipeline_root, status.job_id)
    found = task_dirs(job_root)
    where = job_root
  except run_record.ReportError as error:
    found, where = {}, str(error)
  nodes: Dict[str, run_record.NodeRun] = {}
  unfinished = []
  for node_id, task_dir in found.items():
    if node_id in skip_tasks:
      continue
    outputs = _outputs(task_dir, node_id)
    if outputs is not None:
      nodes[node_id] = run_record.NodeRun(node_id, 'COMPLETE', {}, {}, outputs)
    else:
      unfinished.append(node_id)
  if not status.succeeded:
    not_done = [node_id for node_id in run_record.PIPELINE_NODES
                if node_id not in nodes and node_id not in _NO_DIRECTORY]
    named = [node_id for node_id in not_done
             if re.search(rf'\b{re.escape(node_id)}\b', status.error)]
    started = [node_id for node_id in not_done if node_id in unfinished]
    state = 'CANCELLED' if status.state == 'CANCELLED' else 'FAILED'
    for node_id in (named or started or not_done[:1]):
      nodes[node_id] = run_record.NodeRun(node_id, state, {}, {}, {})
  return run_record.PipelineRun(
      pipeline_root=pipeline_root, pipeline_name=pipeline_name,
      run_id=status.job_id, started=None, nodes=nodes,
      error=status.error or None,
      source=f'the task outputs of Vertex AI Pipelines job {status.job_id} '
      f'({where})')


def report_page(job_root: str, report_node: str, output_key: str,
                page_file: str) -> Optional[str]:
  """The page the ReviewReport task of the job wrote, if it did."""
  import tensorflow as tf
  task_dir = task_dirs(job_root).get(report_node)
  if task_dir is None:
    return None
  path = os.path.join(task_dir, output_key, page_file)
  return path if tf.io.gfile.exists(path) else None
