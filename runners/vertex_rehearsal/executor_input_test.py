"""The executor input of an exit task: the job's final status."""

import json

import pytest

from runners.vertex_rehearsal import executor_input
from runners.vertex_rehearsal.spec import RehearsalError
from runners.vertex_rehearsal.spec import Task

_EXIT_TASK = Task(
    name='OnExit',
    spec={'dependentTasks': ['tfx-dag'], 'inputs': {'parameters': {
        'final_status': {'taskFinalStatus': {'producerTask': 'tfx-dag'}},
        'pipeline_root': {'runtimeValue': {'constantValue': {
            'stringValue': 'gs://bucket/root'}}}}}},
    component={'outputDefinitions': {'artifacts': {'report': {
        'artifactType': {'schemaTitle': 'tfx_pipeline.ReviewReportPage'}}}}},
    executor={'container': {}})
_STATUS = {'state': 'FAILED',
           'pipelineJobResourceName': 'projects/0/locations/l/pipelineJobs/j',
           'error': {'code': 9, 'message': 'failed tasks: [Gate]'}}


def _build(final_status):
  location = executor_input.TaskLocation('gs://bucket/root/0/j', 'OnExit', '1')
  return executor_input.build(
      _EXIT_TASK, location, {}, lambda name, value: (value, []),
      lambda uri: uri.replace('gs://', '/gcs/'), lambda: 'artifacts/1',
      final_status)


def test_the_final_status_is_a_json_string_and_an_object():
  built, notes = _build(_STATUS)
  parameters = built['inputs']['parameters']
  # What TFX's FinalStatusStr receives (schema 2.0 reads `parameters`).
  assert json.loads(parameters['final_status']['stringValue']) == _STATUS
  assert built['inputs']['parameterValues']['final_status'] == _STATUS
  assert parameters['pipeline_root'] == {'stringValue': 'gs://bucket/root'}
  assert built['outputs']['artifacts']['report']['artifacts'][0]['uri'] == (
      '/gcs/bucket/root/0/j/OnExit_1/report')
  assert 'OnExit: parameter final_status: final status FAILED' in notes


def test_only_an_exit_task_gets_a_final_status():
  with pytest.raises(RehearsalError, match='only an exit task gets one'):
    _build(None)
