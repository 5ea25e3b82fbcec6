"""Reading a Vertex job's run from its task directories and final status."""

import json

import pytest

from tfx_pipeline.report import run_record
from tfx_pipeline.report import vertex_job

JOB_ID = 'maskformer-tfx-20261130120000'
RESOURCE = f'projects/123456/locations/us-central1/pipelineJobs/{JOB_ID}'


def _status(state='FAILED', message='The DAG failed because some tasks '
            'failed. The failed tasks are: [DataValidationGate].'):
  status = {'state': state, 'pipelineJobResourceName': RESOURCE,
            'pipelineTaskName': 'tfx-dag'}
  if message:
    status['error'] = {'code': 9, 'message': message}
  return vertex_job.parse_final_status(json.dumps(status))


def _task(job_root, name, outputs=None):
  """A task directory; with `outputs` ({key: metadata}) its executor output."""
  task_dir = job_root / f'{name}_-{abs(hash(name)) % 10**12}'
  task_dir.mkdir(parents=True)
  if outputs is not None:
    artifacts = {}
    for key, metadata in outputs.items():
      (task_dir / key).mkdir()
      artifacts[key] = {'artifacts': [{'uri': str(task_dir / key),
                                       'metadata': metadata}]}
    (task_dir / vertex_job.EXECUTOR_OUTPUT_FILE).write_text(
        json.dumps({'artifacts': artifacts}))
  return task_dir


def test_final_status_gives_state_job_id_and_error():
  status = _status()
  assert (status.state, status.job_id, status.succeeded) == (
      'FAILED', JOB_ID, False)
  assert 'DataValidationGate' in status.error
  assert _status('SUCCEEDED', '').succeeded


@pytest.mark.parametrize('text', ['not json', '{"state": 3}', '{}'])
def test_a_bad_final_status_is_named(text):
  with pytest.raises(run_record.ReportError, match='final status'):
    vertex_job.parse_final_status(text)


def test_job_id_of_a_vertex_output_uri_only():
  assert vertex_job.job_id_of_output(
      f'gs://b/root/123456/{JOB_ID}/ReviewReport_-4611686018427387904/report'
  ) == JOB_ID
  assert vertex_job.job_id_of_output(
      f'/gcs/b/root/000000000000/{JOB_ID}/ReviewReport_0123456789abcdef/'
      'report') == JOB_ID
  # A local run: PIPELINE_ROOT/ReviewReport/report/<execution id>.
  assert vertex_job.job_id_of_output('/tmp/root/ReviewReport/report/17') == ''
  assert vertex_job.job_id_of_output('/tmp/pytest-1/test_a_page_0/report') == ''


def test_a_job_stopped_at_the_gate(tmp_path):
  job_root = tmp_path / 'root' / '123456' / JOB_ID
  _task(job_root, 'ImportExampleGen', {'examples': {'split_names':
                                                    '["train", "eval"]'}})
  _task(job_root, 'ImportSchemaGen', {'schema': {}})
  _task(job_root, 'StatisticsGen', {'statistics': {}})
  _task(job_root, 'ExampleValidator', {'anomalies': {}})
  _task(job_root, 'ReviewReportOnExit')  # The exit handler's own directory.
  run = vertex_job.load_run(str(tmp_path / 'root'), _status(),
                            'maskformer-tfx',
                            skip_tasks=('ReviewReportOnExit',))
  assert run.run_id == JOB_ID
  assert run.failed_nodes() == ['DataValidationGate']
  assert run.error.endswith('[DataValidationGate].')
  assert sorted(run.nodes) == ['DataValidationGate', 'ExampleValidator',
                               'ImportExampleGen', 'ImportSchemaGen',
                               'StatisticsGen']
  statistics = run.output('StatisticsGen', 'statistics')
  assert statistics.type_name == 'ExampleStatistics'
  assert statistics.uri.endswith('/statistics')
  assert run.output('ImportExampleGen', 'examples').properties == {
      'split_names': '["train", "eval"]'}
  with pytest.raises(run_record.Unavailable, match='Transform'):
    run.output('Transform', 'transform_graph')


def test_without_a_named_task_the_first_unfinished_node_failed(tmp_path):
  job_root = tmp_path / 'root' / '1' / JOB_ID
  for name, key in (('ImportExampleGen', 'examples'),
                    ('ImportSchemaGen', 'schema'),
                    ('StatisticsGen', 'statistics'),
                    ('ExampleValidator', 'anomalies'),
                    ('DataValidationGate', None), ('Transform', 'transform_graph'),
                    ('Trainer', 'model')):
    _task(job_root, name, {key: {}} if key else {})
  _task(job_root, 'Evaluator', {'blessing': {'blessed': {'__value__': 1}}})
  _task(job_root, 'Pusher')  # Started, never finished.
  run = vertex_job.load_run(str(tmp_path / 'root'),
                            _status(message=''),
                            'p')
  assert run.failed_nodes() == ['Pusher']
  assert run.error is None
  assert run.output('Evaluator', 'blessing').properties == {'blessed': 1}


def test_a_job_that_wrote_nothing_still_has_a_run(tmp_path):
  with pytest.raises(run_record.ReportError,
                     match=f'No outputs of job {JOB_ID}'):
    vertex_job.find_job_root(str(tmp_path), JOB_ID)
  run = vertex_job.load_run(str(tmp_path), _status(message=''), 'p')
  assert run.failed_nodes() == ['ImportExampleGen']
  assert f'No outputs of job {JOB_ID}' in run.source


def test_a_job_stopped_by_the_drift_gate_shows_its_drift(tmp_path):
  """The exit handler's page of a job the DriftGate stopped: the gate is the
  failed node and the Drift section reads the DriftValidator's drift.json
  from the job's task outputs."""
  from tfx_pipeline.report import page
  job_root = tmp_path / 'root' / '123456' / JOB_ID
  for name, key in (('ImportExampleGen', 'examples'),
                    ('ImportSchemaGen', 'schema'),
                    ('StatisticsGen', 'statistics'),
                    ('ExampleValidator', 'anomalies'),
                    ('DataValidationGate', None),
                    ('PanopticStatisticsGen', 'statistics'),
                    ('DriftValidator', 'drift'),
                    ('Transform', 'transform_graph')):
    _task(job_root, name, {key: {}} if key else {})
  (drift_dir,) = job_root.glob('DriftValidator_*/drift')
  model = 'gs://b/root/123456/job-1/Trainer_-1/model'
  (drift_dir / 'drift.json').write_text(json.dumps({
      'baseline_model': model, 'baseline_statistics': None,
      'statistics': str(tmp_path / 'absent' / 'FeatureStats.pb'), 'span': 3,
      'allow_drift': False, 'drifted': True, 'features': [
          {'feature': 'segment_category',
           'comparator': 'jensen_shannon_divergence', 'distance': 0.31,
           'threshold': 0.05, 'drifted': True}],
      'message': f'Data drift against the data of blessed model {model}: '
                 "'segment_category' Jensen-Shannon 0.31 > 0.05"}))
  run = vertex_job.load_run(
      str(tmp_path / 'root'),
      _status(message='The DAG failed because some tasks failed. The failed '
              'tasks are: [DriftGate].'), 'maskformer-tfx')
  assert run.failed_nodes() == ['DriftGate']
  html = page.build_report_html(run, num_examples=1)
  assert '<li class="bad">DriftGate: failed</li>' in html
  assert '<li class="good">DriftValidator: complete</li>' in html
  drift = html.split('<section id="drift">')[1].split('</section>')[0]
  assert 'id="drift-verdict">DRIFTED</b>' in drift
  assert f'<code>{model}</code>' in drift
  assert 'The run stopped at DriftGate, before the Trainer.' in drift
  assert 'data-feature="segment_category" data-drifted="true"' in drift
