"""The executor input JSON that Vertex AI Pipelines passes to a task (`{{$}}`).

Its format is KFP's `pipeline_spec.ExecutorInput`:
`inputs.parameters` (Value: stringValue / intValue / doubleValue, what TFX's
schema 2.0 entrypoints read) and `inputs.parameterValues` (plain JSON),
`inputs.artifacts[key].artifacts[]` (name, type, uri, metadata: the upstream
task's output as its executor output recorded it), `outputs.artifacts[key]`
(new artifacts with their URIs under the task's directory) and
`outputs.outputFile` (where the task writes its ExecutorOutput). An exit
handler's `taskFinalStatus` parameter is the job's final status, a KFP
PipelineTaskFinalStatus: a JSON string in `parameters` (what TFX's
`FinalStatusStr` receives) and the object in `parameterValues`.
"""

import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

from runners.vertex_rehearsal.spec import RehearsalError
from runners.vertex_rehearsal.spec import Task

EXECUTOR_OUTPUT_FILE = 'executor_output.json'

# Maps one parameter's value; returns it and lines describing what changed.
ParameterMapper = Callable[[str, Any], Tuple[Any, List[str]]]


@dataclasses.dataclass(frozen=True)
class TaskLocation:
  """Where a task's outputs live, as Vertex lays them out:
  PIPELINE_ROOT/PROJECT_NUMBER/JOB_ID/TASK_TASKID/OUTPUT_KEY."""
  job_root: str   # PIPELINE_ROOT/PROJECT_NUMBER/JOB_ID (a gs:// URI)
  task_name: str
  task_id: str

  @property
  def task_root(self) -> str:
    return f'{self.job_root}/{self.task_name}_{self.task_id}'

  def output_uri(self, key: str) -> str:
    return f'{self.task_root}/{key}'

  @property
  def output_file(self) -> str:
    return f'{self.task_root}/{EXECUTOR_OUTPUT_FILE}'


def _constant(task: Task, name: str, spec: Mapping[str, Any]) -> Any:
  """(Value JSON, plain value) of a task's constant parameter."""
  runtime_value = spec.get('runtimeValue')
  if runtime_value is None:
    raise RehearsalError(
        f'Task {task.name}: parameter {name} comes from '
        f'{sorted(spec)}; only constant parameters are rehearsed (TFX '
        'compiles every execution property as a constant).')
  if 'constantValue' in runtime_value:     # schema 2.0 (TFX 1.16's)
    value = runtime_value['constantValue']
    for key in ('stringValue', 'intValue', 'doubleValue'):
      if key in value:
        return int(value[key]) if key == 'intValue' else value[key]
  if 'constant' in runtime_value:          # schema 2.1
    return runtime_value['constant']
  raise RehearsalError(f'Task {task.name}: parameter {name} has no constant '
                       'value.')


def as_value(plain: Any) -> Dict[str, Any]:
  """The deprecated `Value` form of a parameter (TFX's schema 2.0 reads it)."""
  if isinstance(plain, bool) or isinstance(plain, int):
    return {'intValue': str(int(plain))}
  if isinstance(plain, float):
    return {'doubleValue': plain}
  return {'stringValue': plain if isinstance(plain, str) else str(plain)}


def build(task: Task,
          location: TaskLocation,
          upstream_outputs: Mapping[Tuple[str, str], List[Dict[str, Any]]],
          map_parameter: ParameterMapper,
          map_uri: Callable[[str], str],
          new_artifact_name: Callable[[], str],
          final_status: Optional[Mapping[str, Any]] = None
          ) -> Tuple[Dict[str, Any], List[str]]:
  """The executor input of `task`.

  Args:
    task: the task.
    location: where its outputs go (gs:// URIs before mapping).
    upstream_outputs: (producer task, output key) -> the artifacts it
      produced (executor-input JSON form, URIs already local).
    map_parameter: maps a parameter value (gs:// and image paths).
    map_uri: maps a gs:// URI to its local path.
    new_artifact_name: the next Vertex ML Metadata artifact resource name.
    final_status: the job's PipelineTaskFinalStatus (JSON form), for an exit
      task's `taskFinalStatus` parameter.

  Returns:
    The executor input and the lines describing each substitution.
  """
  notes: List[str] = []
  parameters, parameter_values = {}, {}
  for name, spec in sorted(task.spec.get('inputs', {}).get('parameters',
                                                          {}).items()):
    if 'taskFinalStatus' in spec:
      if final_status is None:
        raise RehearsalError(f'Task {task.name}: parameter {name} is the final '
                             'status of a DAG; only an exit task gets one.')
      parameters[name] = as_value(json.dumps(final_status, sort_keys=True))
      parameter_values[name] = dict(final_status)
      notes.append(f'{task.name}: parameter {name}: final status '
                   f'{final_status["state"]}')
      continue
    value, changes = map_parameter(name, _constant(task, name, spec))
    notes.extend(changes)
    parameters[name] = as_value(value)
    parameter_values[name] = value
  artifacts = {}
  for key, spec in sorted(task.spec.get('inputs', {}).get('artifacts',
                                                         {}).items()):
    source = spec.get('taskOutputArtifact')
    if source is None:
      raise RehearsalError(f'Task {task.name}: input artifact {key} comes from '
                           f'{sorted(spec)}; only upstream task outputs are '
                           'rehearsed.')
    produced = upstream_outputs.get((source['producerTask'],
                                     source['outputArtifactKey']))
    if produced:
      artifacts[key] = {'artifacts': produced}
  outputs = {}
  for key, definition in sorted(task.component.get(
      'outputDefinitions', {}).get('artifacts', {}).items()):
    outputs[key] = {'artifacts': [{
        'name': new_artifact_name(),
        'type': definition['artifactType'],
        'uri': map_uri(location.output_uri(key)),
    }]}
  executor_input = {
      'inputs': {'parameters': parameters, 'parameterValues': parameter_values,
                 'artifacts': artifacts},
      'outputs': {'artifacts': outputs,
                  'outputFile': map_uri(location.output_file)},
  }
  return executor_input, notes


def read_executor_output(executor_input: Mapping[str, Any]
                         ) -> Optional[Dict[str, Any]]:
  """The ExecutorOutput JSON the task wrote to its output file, if any."""
  path = executor_input['outputs']['outputFile']
  if not os.path.exists(path):
    return None
  with open(path, encoding='utf-8') as f:
    return json.load(f)


def produced_artifacts(executor_input: Mapping[str, Any],
                       executor_output: Optional[Mapping[str, Any]]
                       ) -> Dict[str, List[Dict[str, Any]]]:
  """Output key -> the artifacts as Vertex records them after the task.

  The executor output's artifacts (with the metadata the executor set, e.g.
  split names or `blessed`) override the executor input's by key.
  """
  result = {}
  for key, listed in executor_input['outputs']['artifacts'].items():
    declared = listed['artifacts'][0]
    written = ((executor_output or {}).get('artifacts', {}).get(key, {})
               .get('artifacts') or [{}])[0]
    result[key] = [{'name': declared['name'], 'type': declared['type'],
                    'uri': written.get('uri') or declared['uri'],
                    'metadata': written.get('metadata',
                                            declared.get('metadata', {}))}]
  return result
