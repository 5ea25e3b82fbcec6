"""Reads a compiled PipelineJob JSON: tasks, dependency order, placeholders.

A KFP v2 PipelineSpec (what `KubeflowV2DagRunner` writes) has
`root.dag.tasks` (each with `componentRef`, `dependentTasks` and inputs from
constants or upstream task outputs), `components` (input and output
definitions, executor label) and `deploymentSpec.executors` (a `container`
with `image`, `command`, `args` and optionally a `lifecycle.preCacheCheck`
driver, an `importer` or a `resolver`). Container arguments carry
placeholders such as `{{$}}` (the executor input JSON) and
`{{$.inputs.parameters['name']}}`, resolved here against an executor input.

With an exit handler (`KubeflowV2DagRunner.set_exit_handler`), the root DAG
holds two tasks: `tfx-dag`, whose component is a sub-DAG of the pipeline's
tasks, and the exit handler, which depends on it with trigger policy
ALL_UPSTREAM_TASKS_COMPLETED (it runs whatever the sub-DAG's outcome) and
takes its final status as a `taskFinalStatus` parameter.
"""

import dataclasses
import json
import re
from typing import Any, List, Mapping, Optional


class RehearsalError(RuntimeError):
  """The compiled pipeline cannot be rehearsed, or a task of it failed."""


@dataclasses.dataclass(frozen=True)
class Task:
  """One task of the pipeline's root DAG."""
  name: str
  spec: Mapping[str, Any]        # root.dag.tasks[name]
  component: Mapping[str, Any]   # components[componentRef.name]
  executor: Mapping[str, Any]    # deploymentSpec.executors[executorLabel]

  @property
  def kind(self) -> str:
    """'container', 'importer' or 'resolver'."""
    for kind in ('container', 'importer', 'resolver'):
      if kind in self.executor:
        return kind
    raise RehearsalError(
        f'Task {self.name}: executor kind {sorted(self.executor)} is not '
        'one that Vertex AI Pipelines runs for TFX (container, importer, '
        'resolver).')

  @property
  def upstream(self) -> List[str]:
    return list(self.spec.get('dependentTasks', []))


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
  """A compiled PipelineJob: its display name, pipeline root and tasks.

  Attributes:
    tasks: The pipeline's tasks (of the `tfx-dag` sub-DAG, if there is one).
    exit_tasks: Tasks that run after them whatever their outcome (the exit
      handler).
    dag_name: The sub-DAG task the exit tasks depend on ('' if none).
  """
  path: str
  display_name: str
  pipeline_root: str
  tasks: Mapping[str, Task]
  exit_tasks: Mapping[str, Task] = dataclasses.field(default_factory=dict)
  dag_name: str = ''

  def in_dependency_order(self) -> List[Task]:
    """Every task after the tasks it depends on (ties: by name)."""
    done: List[str] = []
    remaining = dict(self.tasks)
    while remaining:
      ready = sorted(name for name, task in remaining.items()
                     if all(up in done for up in task.upstream))
      if not ready:
        raise RehearsalError(
            f'{self.path}: the tasks {sorted(remaining)} depend on each other '
            'or on tasks that do not exist.')
      for name in ready:
        done.append(name)
        del remaining[name]
    return [self.tasks[name] for name in done]


def _require(mapping: Any, key: str, where: str, path: str) -> Any:
  if not isinstance(mapping, dict) or key not in mapping:
    raise RehearsalError(f'{path} is not a compiled Vertex AI PipelineJob: '
                         f'{where} has no "{key}".')
  return mapping[key]


def load(path: str) -> CompiledPipeline:
  """Parses the PipelineJob JSON at `path`.

  Raises:
    RehearsalError: unreadable file or not a compiled PipelineJob (the
      message names the file and what is missing).
  """
  try:
    with open(path, encoding='utf-8') as f:
      job = json.load(f)
  except OSError as error:
    raise RehearsalError(f'Cannot read {path}: {error}') from error
  except json.JSONDecodeError as error:
    raise RehearsalError(f'{path} is not JSON: {error}') from error
  spec = _require(job, 'pipelineSpec', 'the file', path)
  root = _require(_require(job, 'runtimeConfig', 'the file', path),
                  'gcsOutputDirectory', 'runtimeConfig', path)
  dag_tasks = _require(_require(_require(spec, 'root', 'pipelineSpec', path),
                                'dag', 'root', path), 'tasks', 'root.dag', path)
  components = _require(spec, 'components', 'pipelineSpec', path)
  executors = _require(_require(spec, 'deploymentSpec', 'pipelineSpec', path),
                       'executors', 'deploymentSpec', path)

  def component_of(name: str, task_spec: Mapping[str, Any]) -> Any:
    ref = task_spec.get('componentRef', {}).get('name')
    component = components.get(ref)
    if component is None:
      raise RehearsalError(f'{path}: task {name} refers to component {ref!r}, '
                           'which the pipeline does not define.')
    return component

  def task_of(name: str, task_spec: Mapping[str, Any]) -> Task:
    component = component_of(name, task_spec)
    executor = executors.get(component.get('executorLabel'))
    if executor is None:
      raise RehearsalError(f'{path}: component '
                           f'{task_spec["componentRef"]["name"]} has no '
                           f'executor {component.get("executorLabel")!r}.')
    return Task(name, task_spec, component, executor)

  sub_dags = [name for name, task_spec in dag_tasks.items()
              if 'dag' in component_of(name, task_spec)]
  if len(sub_dags) > 1:
    raise RehearsalError(f'{path}: the root DAG has several sub-DAGs '
                         f'{sub_dags}; TFX compiles at most one (tfx-dag).')
  dag_name = sub_dags[0] if sub_dags else ''
  exit_tasks = {}
  if dag_name:
    for name, task_spec in dag_tasks.items():
      if name != dag_name:
        exit_tasks[name] = task_of(name, task_spec)
    dag_tasks = _require(component_of(dag_name, dag_tasks[dag_name])['dag'],
                         'tasks', f'component {dag_name} dag', path)
  tasks = {name: task_of(name, task_spec)
           for name, task_spec in dag_tasks.items()}
  for task in tasks.values():
    missing = [up for up in task.upstream if up not in tasks]
    if missing:
      raise RehearsalError(f'{path}: task {task.name} depends on unknown '
                           f'tasks {missing}.')
  for task in exit_tasks.values():
    if task.upstream != [dag_name]:
      raise RehearsalError(f'{path}: exit task {task.name} depends on '
                           f'{task.upstream}, not on {dag_name} alone.')
  return CompiledPipeline(
      path=path,
      display_name=job.get('displayName') or spec.get(
          'pipelineInfo', {}).get('name', 'pipeline'),
      pipeline_root=root, tasks=tasks, exit_tasks=exit_tasks,
      dag_name=dag_name)


# KFP v2 runtime placeholders (kfp.dsl placeholders and the Vertex service).
_PLACEHOLDER_RE = re.compile(r'\{\{\$(?P<path>[^}]*)\}\}')
_INPUT_PARAMETER_RE = re.compile(r"\.inputs\.parameters\['(?P<name>[^']+)'\]")
_ARTIFACT_RE = re.compile(
    r"\.(?P<side>inputs|outputs)\.artifacts\['(?P<name>[^']+)'\]"
    r"\.(?P<field>uri|path|metadata)(\['(?P<key>[^']+)'\])?")


def parameter_value(value: Mapping[str, Any]) -> Any:
  """A Python value of an executor-input `parameters` Value."""
  for key in ('stringValue', 'intValue', 'doubleValue'):
    if key in value:
      return int(value[key]) if key == 'intValue' else value[key]
  return None


def _artifact(executor_input: Mapping[str, Any], side: str,
              name: str) -> Optional[Mapping[str, Any]]:
  artifacts = executor_input.get(side, {}).get('artifacts', {}).get(name, {})
  found = artifacts.get('artifacts') or []
  return found[0] if found else None


def resolve_placeholders(text: str, executor_input: Mapping[str, Any],
                         runtime: Mapping[str, str], where: str) -> str:
  """`text` with each `{{$...}}` placeholder replaced as Vertex does.

  Args:
    text: a compiled argument or query.
    executor_input: the task's executor input (JSON form).
    runtime: values of the job-level placeholders: pipeline_job_name,
      pipeline_job_uuid, pipeline_task_name, pipeline_task_uuid,
      pipeline_root.
    where: names the task and argument in errors.

  Raises:
    RehearsalError: a placeholder this rehearsal does not know, or one that
      names an input the task does not have.
  """

  def _replace(match: 're.Match[str]') -> str:
    path = match.group('path')
    if path == '':
      return json.dumps(executor_input, sort_keys=True)
    if path == '.outputs.output_file':
      return executor_input['outputs']['outputFile']
    if path.lstrip('.') in runtime:
      return runtime[path.lstrip('.')]
    parameter = _INPUT_PARAMETER_RE.fullmatch(path)
    if parameter:
      values = executor_input.get('inputs', {}).get('parameters', {})
      if parameter.group('name') not in values:
        raise RehearsalError(f'{where}: {match.group(0)} names no input '
                             'parameter of the task.')
      return str(parameter_value(values[parameter.group('name')]))
    artifact_path = _ARTIFACT_RE.fullmatch(path)
    if artifact_path:
      artifact = _artifact(executor_input, artifact_path.group('side'),
                           artifact_path.group('name'))
      if artifact is None:
        raise RehearsalError(f'{where}: {match.group(0)} names no artifact '
                             'the task has.')
      if artifact_path.group('field') == 'metadata':
        value = artifact.get('metadata', {}).get(artifact_path.group('key'))
        return '' if value is None else str(value)
      return artifact['uri']
    raise RehearsalError(f'{where}: unknown placeholder {match.group(0)}.')

  return _PLACEHOLDER_RE.sub(_replace, text)
