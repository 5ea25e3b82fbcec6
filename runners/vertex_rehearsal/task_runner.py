"""Runs a compiled pipeline's tasks in dependency order, as Vertex would.

Container tasks run as subprocesses with their compiled command and args
(placeholders resolved, substitutions printed), the ImportExampleGen driver
(`lifecycle.preCacheCheck`) first where there is one; importer tasks
register their artifact; resolver tasks query the metadata stand-in. The
first failing task stops the run, as on Vertex AI Pipelines. Exit tasks
(the exit handler) then run, succeeded or failed, with the final status
Vertex passes them (`final_status`).
"""

import dataclasses
import datetime
import os
import pathlib
import subprocess
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple

from runners.vertex_rehearsal import executor_input as executor_input_lib
from runners.vertex_rehearsal import fake_registry
from runners.vertex_rehearsal import fake_vertex
from runners.vertex_rehearsal import metadata
from runners.vertex_rehearsal import spec as spec_lib
from runners.vertex_rehearsal import substitutions
from runners.vertex_rehearsal.gcs import GcsMapping
from runners.vertex_rehearsal.spec import RehearsalError
from runners.vertex_rehearsal.spec import Task
from tfx_pipeline.report import local_root

CONTAINER_SITE_DIR = str(pathlib.Path(__file__).resolve().parent /
                         'container_site')
# Vertex's project number in artifact paths; the rehearsal has no project.
PROJECT_NUMBER = '000000000000'
LOCATION = 'local'
# google.rpc.Code FAILED_PRECONDITION, the code of a failed job's error.
_FAILED_CODE = 9
LOG_TAIL_LINES = 40


@dataclasses.dataclass
class TaskResult:
  name: str
  status: str          # 'succeeded', 'failed' or 'not run'
  seconds: float = 0.0
  log: Optional[str] = None
  outputs: Dict[str, List[Dict[str, Any]]] = dataclasses.field(
      default_factory=dict)


@dataclasses.dataclass
class RehearsalResult:
  job_id: str
  job_root: str        # local directory of the job's artifacts
  log_dir: str
  tasks: List[TaskResult]
  custom_jobs: List[str]

  @property
  def succeeded(self) -> bool:
    return all(task.status == 'succeeded' for task in self.tasks)

  def task(self, name: str) -> TaskResult:
    return next(task for task in self.tasks if task.name == name)


class Rehearsal:
  """One rehearsal of a compiled pipeline under a local Cloud Storage root."""

  def __init__(self, pipeline: spec_lib.CompiledPipeline, gcs_root: str,
               printer: Callable[[str], None] = print,
               job_id: Optional[str] = None):
    self.pipeline = pipeline
    self.gcs = GcsMapping(gcs_root)
    self.print = printer
    stamp = datetime.datetime.now().strftime('%Y%m%d%H%M%S')
    self.job_id = job_id or f'{pipeline.display_name}-{stamp}'
    self.job_root_uri = (f'{pipeline.pipeline_root.rstrip("/")}/'
                         f'{PROJECT_NUMBER}/{self.job_id}')
    self.rehearsal_dir = os.path.join(self.gcs.root, '_rehearsal')
    self.log_dir = os.path.join(self.rehearsal_dir, self.job_id)
    self.store = metadata.MetadataStore(
        os.path.join(self.rehearsal_dir, 'metadata.json'))
    self.outputs: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}

  # Substitutions of parameter values.
  def _map_parameter(self, task: Task) -> Callable[[str, Any],
                                                   Tuple[Any, List[str]]]:
    def map_parameter(name: str, value: Any) -> Tuple[Any, List[str]]:
      notes = []
      if isinstance(value, str):
        image_mapped = substitutions.image_paths(value)
        if image_mapped != value:
          notes.append(f'{task.name}: parameter {name}: image path {value} -> '
                       f'{image_mapped}')
          value = image_mapped
      value, pairs = self.gcs.map_value(value)
      notes.extend(f'{task.name}: parameter {name}: {uri} -> {local}'
                   for uri, local in dict(pairs).items())
      return value, notes
    return map_parameter

  def run(self) -> RehearsalResult:
    """Runs every task; stops at the first failure."""
    if not self.pipeline.pipeline_root.startswith('gs://'):
      raise RehearsalError(
          f'{self.pipeline.path}: the pipeline root '
          f'{self.pipeline.pipeline_root!r} is not a gs:// location.')
    os.makedirs(self.log_dir, exist_ok=True)
    self.print(f'Rehearsing {self.pipeline.path} as Vertex AI Pipelines job '
               f'{self.job_id}')
    self.print(f'  gs:// -> {self.gcs.root}/ (pipeline root '
               f'{self.pipeline.pipeline_root} -> '
               f'{self.gcs.local_path(self.pipeline.pipeline_root)})')
    self.print(f'  task logs: {self.log_dir}')
    results = []
    failed = None
    for task in self.pipeline.in_dependency_order():
      if failed:
        results.append(TaskResult(task.name, 'not run'))
        continue
      result = self._timed_task(task, f'({task.kind})')
      results.append(result)
      if result.status != 'succeeded':
        failed = task.name
    if failed:
      not_run = [r.name for r in results if r.status == 'not run']
      self.print(f'\nTask {failed} failed; Vertex AI Pipelines stops the run '
                 f'there. Not run: {", ".join(not_run) or "none"}.')
    status = self.final_status(failed)
    for task in self.pipeline.exit_tasks.values():
      results.append(self._timed_task(
          task, f'(exit handler after {self.pipeline.dag_name}: '
          f'{status["state"]})', status))
    capture_dir = os.path.join(self.log_dir, 'custom_jobs')
    custom_jobs = (sorted(os.path.join(capture_dir, name)
                          for name in os.listdir(capture_dir))
                   if os.path.isdir(capture_dir) else [])
    return RehearsalResult(self.job_id, self.gcs.local_path(self.job_root_uri),
                           self.log_dir, results, custom_jobs)

  def _timed_task(self, task: Task, heading: str,
                  final_status: Optional[Dict[str, Any]] = None
                  ) -> TaskResult:
    """`_run_task`, framed by a heading and the task's status and time."""
    self.print(f'\n== {task.name} {heading}')
    start = time.monotonic()
    result = self._run_task(task, final_status)
    result.seconds = time.monotonic() - start
    self.print(f'== {task.name}: {result.status} in {result.seconds:.0f} s')
    return result

  def final_status(self, failed_task: Optional[str]) -> Dict[str, Any]:
    """The PipelineTaskFinalStatus (JSON) Vertex passes an exit handler.

    Fields as KFP's pipeline_spec.proto defines them; the error message is
    this rehearsal's wording, naming the failed task as Vertex's does.
    """
    status = {
        'state': 'FAILED' if failed_task else 'SUCCEEDED',
        'pipelineJobResourceName': (f'projects/{PROJECT_NUMBER}/locations/'
                                    f'{LOCATION}/pipelineJobs/{self.job_id}'),
        'pipelineTaskName': self.pipeline.dag_name,
    }
    if failed_task:
      status['error'] = {
          'code': _FAILED_CODE,
          'message': ('The DAG failed because some tasks failed. The failed '
                      f'tasks are: [{failed_task}].')}
    return status

  def _run_task(self, task: Task,
                final_status: Optional[Dict[str, Any]] = None) -> TaskResult:
    location = executor_input_lib.TaskLocation(
        self.job_root_uri, task.name, uuid.uuid4().hex[:16])
    executor_input, notes = executor_input_lib.build(
        task, location, self.outputs, self._map_parameter(task),
        self.gcs.local_path, self.store.new_name, final_status)
    for note in notes:
      self.print(f'  {note}')
    if task.kind == 'resolver':
      produced = self._resolve(task, executor_input)
      status = 'succeeded'
      log = None
    elif task.kind == 'importer':
      produced = self._import(task, executor_input)
      status = 'succeeded'
      log = None
    else:
      log = os.path.join(self.log_dir, f'{task.name}.log')
      status = self._run_container(task, executor_input, log)
      produced = executor_input_lib.produced_artifacts(
          executor_input, executor_input_lib.read_executor_output(
              executor_input))
    if status == 'succeeded':
      for key, artifacts in produced.items():
        self.outputs[(task.name, key)] = artifacts
        self.store.record(artifacts)
        for artifact in artifacts:
          self.print(f'  output {key}: {artifact["uri"]}')
    return TaskResult(task.name, status, log=log, outputs=produced)

  def _resolve(self, task: Task, executor_input: Dict[str, Any]
               ) -> Dict[str, List[Dict[str, Any]]]:
    """What Vertex's ML Metadata query returns for a resolver task."""
    produced = {}
    runtime = self._runtime_placeholders(task, executor_input)
    for key, query in task.executor['resolver'].get(
        'outputArtifactQueries', {}).items():
      try:
        filter_text = spec_lib.resolve_placeholders(
            query['filter'], executor_input, runtime, f'{task.name} query {key}')
      except RehearsalError:
        filter_text = None  # Its input artifact does not exist: no match.
      found = (self.store.query(filter_text, f'{task.name} query {key}')
               if filter_text else None)
      self.print(f'  ML Metadata query {key}: {query["filter"]} -> '
                 f'{found["name"] if found else "no artifact (no baseline)"}')
      produced[key] = [found] if found else []
    return {key: value for key, value in produced.items() if value}

  def _import(self, task: Task, executor_input: Dict[str, Any]
              ) -> Dict[str, List[Dict[str, Any]]]:
    """An importer task: registers its artifact URI as its output."""
    importer = task.executor['importer']
    uri = importer.get('artifactUri', {})
    constant = uri.get('constantValue', {}).get('stringValue') or uri.get(
        'constant')
    if not isinstance(constant, str):
      raise RehearsalError(f'Task {task.name}: the importer\'s artifact URI is '
                           'not a constant.')
    local = substitutions.image_paths(self.gcs.local_path(constant))
    self.print(f'  importer: {constant} -> {local}')
    (key, listed), = executor_input['outputs']['artifacts'].items()
    artifact = dict(listed['artifacts'][0], uri=local,
                    type=importer.get('typeSchema', listed['artifacts'][0][
                        'type']), metadata=dict(importer.get('metadata', {})))
    return {key: [artifact]}

  def _runtime_placeholders(self, task: Task,
                            executor_input: Dict[str, Any]) -> Dict[str, str]:
    del executor_input
    return {'pipeline_job_name': self.job_id,
            'pipeline_job_uuid': self.job_id,
            'pipeline_task_name': task.name,
            'pipeline_task_uuid': task.name,
            'pipeline_root': self.gcs.local_path(self.pipeline.pipeline_root)}

  def _command(self, task: Task, command: List[str], args: List[str],
               executor_input: Dict[str, Any], what: str) -> List[str]:
    """A container command line as this machine runs it (notes printed)."""
    where = f'{task.name} {what}'
    runtime = self._runtime_placeholders(task, executor_input)
    command, notes = substitutions.interpreter(command, where)
    entrypoint, beam = substitutions.split_entrypoint_args(args)
    beam, beam_notes = substitutions.beam_args(beam, where)
    notes.extend(beam_notes)
    resolved = []
    for arg in entrypoint + beam:
      arg = spec_lib.resolve_placeholders(arg, executor_input, runtime, where)
      if not arg.startswith('{'):   # The executor input is mapped already.
        mapped, pairs = self.gcs.map_text(arg)
        notes.extend(f'{where}: argument {uri} -> {local}'
                     for uri, local in dict(pairs).items())
        arg = mapped
      resolved.append(arg)
    for note in notes:
      self.print(f'  {note}')
    return command + resolved

  def _environment(self) -> Dict[str, str]:
    env = dict(os.environ)
    env['TF_USE_LEGACY_KERAS'] = '1'
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    env['PYTHONPATH'] = os.pathsep.join(
        [CONTAINER_SITE_DIR] + [p for p in env.get('PYTHONPATH', '').split(
            os.pathsep) if p])
    env[fake_vertex.CAPTURE_DIR_ENV] = os.path.join(self.log_dir,
                                                    'custom_jobs')
    env[fake_registry.REQUESTS_DIR_ENV] = os.path.join(
        self.gcs.root, fake_registry.REQUESTS_DIR)
    return env

  def _run_container(self, task: Task, executor_input: Dict[str, Any],
                     log: str) -> str:
    container = task.executor['container']
    self.print(f'  image {container.get("image")} -> this project\'s .venv')
    steps = []
    driver = container.get('lifecycle', {}).get('preCacheCheck')
    if driver:
      steps.append(('driver', driver))
    steps.append(('container', container))
    with open(log, 'w', encoding='utf-8') as log_file:
      for what, step in steps:
        command = self._command(task, list(step.get('command', [])),
                                list(step.get('args', [])), executor_input,
                                what)
        log_file.write(f'$ {" ".join(command[:4])} ...\n')
        log_file.flush()
        returncode = subprocess.run(
            command, stdout=log_file, stderr=subprocess.STDOUT,
            env=self._environment(), cwd=self.log_dir, check=False).returncode
        if returncode != 0:
          self.print(f'  {what} exited {returncode}; last lines of {log}:')
          with open(log, encoding='utf-8', errors='replace') as f:
            for line in f.read().splitlines()[-LOG_TAIL_LINES:]:
              self.print(f'    {line}')
          return 'failed'
        if what == 'driver':
          self._apply_driver_output(executor_input)
    for line in _rehearsal_lines(log):
      self.print(f'  {line}')
    return 'succeeded'

  def _apply_driver_output(self, executor_input: Dict[str, Any]) -> None:
    """As Vertex does after the driver: the task's parameters take the
    values the driver wrote (the span, version and fingerprint it resolved,
    and `input_config` with `{SPAN}` replaced by that span), and its output
    artifacts the metadata it wrote."""
    output = executor_input_lib.read_executor_output(executor_input) or {}
    inputs = executor_input['inputs']
    for name, value in sorted(output.get('parameterValues', {}).items()):
      if inputs['parameterValues'].get(name) != value:
        self.print(f'  driver: parameter {name} -> '
                   f'{" ".join(str(value).split())}')
      inputs['parameterValues'][name] = value
      inputs['parameters'][name] = executor_input_lib.as_value(value)
    for key, listed in output.get('artifacts', {}).items():
      written = (listed.get('artifacts') or [{}])[0]
      declared = executor_input['outputs']['artifacts'].get(key)
      if declared and written.get('metadata'):
        declared['artifacts'][0].setdefault('metadata', {}).update(
            written['metadata'])


def _rehearsal_lines(log: str) -> List[str]:
  """Lines the fake Vertex client printed into a task log."""
  with open(log, encoding='utf-8', errors='replace') as f:
    return [line.rstrip('\n').replace('[rehearse-vertex] ', '', 1)
            for line in f if line.startswith('[rehearse-vertex] ')]


def summary(result: RehearsalResult) -> List[str]:
  """Lines describing the outcome: tasks, blessing, pushed model."""
  lines = [f'{task.name}: {task.status}'
           + (f' ({task.seconds:.0f} s)' if task.status != 'not run' else '')
           for task in result.tasks]
  for task in result.tasks:
    for artifact in task.outputs.get('blessing', []):
      blessed = artifact.get('metadata', {}).get('blessed')
      lines.append(f'Evaluator blessing: '
                   f'{"blessed" if blessed == 1 else "not blessed"} '
                   f'({artifact["uri"]})')
    for artifact in task.outputs.get('pushed_model', []):
      meta = artifact.get('metadata', {})
      if meta.get('pushed') == 1:
        lines.append(f'Pushed model: {meta.get("pushed_destination")}')
      else:
        lines.append('Pusher: not pushed (the model was not blessed)')
  for path in result.custom_jobs:
    lines.append(f'Captured Vertex AI CustomJob: {path}')
  lines.extend(f'Review page: {path}' for path in review_pages(result))
  return lines


def review_pages(result: RehearsalResult) -> List[str]:
  """The review pages the run wrote (ReviewReport's, or the exit handler's
  for a run that stopped before it)."""
  return [os.path.join(artifact['uri'], local_root.REPORT_FILE)
          for task in result.tasks
          for artifact in task.outputs.get(local_root.REPORT_OUTPUT, [])
          if os.path.isfile(os.path.join(artifact['uri'],
                                         local_root.REPORT_FILE))]
