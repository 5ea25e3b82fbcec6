"""Tests of reading a compiled PipelineJob and resolving its placeholders."""

import json

import pytest

from runners.vertex_rehearsal import spec
from runners.vertex_rehearsal.spec import RehearsalError

_CONTAINER = {'container': {'image': 'img', 'command': ['python', '-m', 'x'],
                            'args': ['{{$}}']}}


def _job(tasks, pipeline_root='gs://bucket/root'):
  components = {name: {'executorLabel': f'{name}_executor'} for name in tasks}
  executors = {f'{name}_executor': _CONTAINER for name in tasks}
  dag = {name: {'componentRef': {'name': name}, 'dependentTasks': upstream}
         for name, upstream in tasks.items()}
  return {'displayName': 'p',
          'runtimeConfig': {'gcsOutputDirectory': pipeline_root},
          'pipelineSpec': {'root': {'dag': {'tasks': dag}},
                           'components': components,
                           'deploymentSpec': {'executors': executors}}}


def _write(tmp_path, job):
  path = tmp_path / 'job.json'
  path.write_text(json.dumps(job))
  return str(path)


def test_tasks_come_after_the_tasks_they_depend_on(tmp_path):
  pipeline = spec.load(_write(tmp_path, _job({
      'Pusher': ['Trainer', 'Evaluator'], 'Evaluator': ['Trainer'],
      'Trainer': ['Transform'], 'Transform': [], 'Resolver': []})))
  order = [task.name for task in pipeline.in_dependency_order()]
  assert order == ['Resolver', 'Transform', 'Trainer', 'Evaluator', 'Pusher']
  assert pipeline.pipeline_root == 'gs://bucket/root'
  assert pipeline.tasks['Trainer'].kind == 'container'


def test_a_dependency_cycle_is_named(tmp_path):
  pipeline = spec.load(_write(tmp_path, _job({'A': ['B'], 'B': ['A']})))
  with pytest.raises(RehearsalError, match=r"\['A', 'B'\] depend on each"):
    pipeline.in_dependency_order()


@pytest.mark.parametrize('content, message', [
    ('not json', 'is not JSON'),
    ('{"pipelineSpec": {}}', 'the file has no "runtimeConfig"'),
    (json.dumps({'runtimeConfig': {'gcsOutputDirectory': 'gs://b/r'},
                 'pipelineSpec': {'root': {}}}), 'root has no "dag"'),
])
def test_a_file_that_is_not_a_compiled_job_is_named(tmp_path, content,
                                                     message):
  path = tmp_path / 'bad.json'
  path.write_text(content)
  with pytest.raises(RehearsalError, match=message) as error:
    spec.load(str(path))
  assert str(path) in str(error.value)


def test_an_unknown_upstream_task_is_named(tmp_path):
  job = _job({'A': []})
  job['pipelineSpec']['root']['dag']['tasks']['A']['dependentTasks'] = ['Z']
  with pytest.raises(RehearsalError, match=r"task A depends on unknown.*'Z'"):
    spec.load(_write(tmp_path, job))


def _with_exit_handler(tasks):
  """A job as TFX compiles it with an exit handler: the tasks in the
  `tfx-dag` sub-DAG, the root DAG holding it and the exit task."""
  job = _job(tasks)
  spec_json = job['pipelineSpec']
  spec_json['components']['tfx-dag'] = {'dag': spec_json['root']['dag']}
  spec_json['components']['OnExit'] = {'executorLabel': 'OnExit_executor'}
  spec_json['deploymentSpec']['executors']['OnExit_executor'] = _CONTAINER
  spec_json['root'] = {'dag': {'tasks': {
      'tfx-dag': {'componentRef': {'name': 'tfx-dag'}},
      'OnExit': {'componentRef': {'name': 'OnExit'},
                 'dependentTasks': ['tfx-dag'],
                 'triggerPolicy': {'strategy':
                                   'ALL_UPSTREAM_TASKS_COMPLETED'},
                 'inputs': {'parameters': {'final_status': {
                     'taskFinalStatus': {'producerTask': 'tfx-dag'}}}}}}}}
  return job


def test_the_sub_dag_tasks_run_then_the_exit_task(tmp_path):
  pipeline = spec.load(_write(tmp_path, _with_exit_handler(
      {'Trainer': ['Transform'], 'Transform': []})))
  assert [task.name for task in pipeline.in_dependency_order()] == [
      'Transform', 'Trainer']
  assert list(pipeline.exit_tasks) == ['OnExit']
  assert pipeline.dag_name == 'tfx-dag'


def test_an_exit_task_that_depends_on_a_task_is_named(tmp_path):
  job = _with_exit_handler({'Transform': []})
  job['pipelineSpec']['root']['dag']['tasks']['OnExit']['dependentTasks'] = [
      'Transform']
  with pytest.raises(RehearsalError, match=r"exit task OnExit depends on "
                     r"\['Transform'\], not on tfx-dag"):
    spec.load(_write(tmp_path, job))


_EXECUTOR_INPUT = {
    'inputs': {
        'parameters': {'steps': {'intValue': '5'},
                       'root': {'stringValue': '/data/x'}},
        'artifacts': {'model': {'artifacts': [{
            'name': 'projects/p/artifacts/7', 'uri': '/tmp/model',
            'metadata': {'current_model_id': 'projects/p/artifacts/3'}}]}}},
    'outputs': {'artifacts': {'blessing': {'artifacts': [{
        'uri': '/tmp/out/blessing'}]}},
                'outputFile': '/tmp/out/executor_output.json'},
}


@pytest.mark.parametrize('text, expected', [
    ("{{$.inputs.parameters['steps']}}", '5'),
    ("--root={{$.inputs.parameters['root']}}", '--root=/data/x'),
    ("{{$.inputs.artifacts['model'].uri}}", '/tmp/model'),
    ("{{$.outputs.artifacts['blessing'].uri}}", '/tmp/out/blessing'),
    ("name=\"{{$.inputs.artifacts['model'].metadata['current_model_id']}}\"",
     'name="projects/p/artifacts/3"'),
    ('{{$.outputs.output_file}}', '/tmp/out/executor_output.json'),
    ('{{$.pipeline_job_name}}/{{$.pipeline_task_name}}', 'job-1/Trainer'),
    ('no placeholder', 'no placeholder'),
])
def test_placeholders_resolve_against_the_executor_input(text, expected):
  runtime = {'pipeline_job_name': 'job-1', 'pipeline_task_name': 'Trainer'}
  assert spec.resolve_placeholders(text, _EXECUTOR_INPUT, runtime,
                                   'T') == expected


def test_the_whole_executor_input_placeholder_is_its_json():
  resolved = spec.resolve_placeholders('{{$}}', _EXECUTOR_INPUT, {}, 'T')
  assert json.loads(resolved) == _EXECUTOR_INPUT


@pytest.mark.parametrize('text, message', [
    ("{{$.inputs.parameters['missing']}}", 'names no input parameter'),
    ("{{$.inputs.artifacts['missing'].uri}}", 'names no artifact'),
    ('{{$.something.else}}', 'unknown placeholder'),
])
def test_unresolvable_placeholders_are_named(text, message):
  with pytest.raises(RehearsalError, match=message) as error:
    spec.resolve_placeholders(text, _EXECUTOR_INPUT, {}, 'Task X arg 3')
  assert 'Task X arg 3' in str(error.value)
