"""Tests of the fake Vertex AI client that stands in for Vertex AI Training."""

import json
import sys

import pytest

from runners.vertex_rehearsal import fake_vertex


def _custom_job(command, machine_spec=None):
  return {
      'display_name': 'tfx_1',
      'job_spec': {'worker_pool_specs': [{
          'machine_spec': machine_spec or {
              'machine_type': 'ct5lp-hightpu-4t',
              'accelerator_type': 'TPU_V5_LITEPOD', 'accelerator_count': 4,
              'tpu_topology': '2x2'},
          'replica_count': 1,
          'container_spec': {'image_uri': 'region-docker.pkg.dev/p/r/i:1',
                             'command': command,
                             'env': [{'name': 'REHEARSAL_TEST_ENV',
                                      'value': 'set'}]}}]},
      'labels': {'pipeline': 'maskformer-tfx'},
  }


@pytest.fixture(name='client')
def _client(tmp_path, monkeypatch):
  monkeypatch.setenv(fake_vertex.CAPTURE_DIR_ENV, str(tmp_path / 'captured'))
  return fake_vertex.FakeJobServiceClient(
      client_options={'api_endpoint': 'us-central1-aiplatform.googleapis.com'})


def test_the_custom_job_is_captured_and_its_command_run_here(
    client, tmp_path, capsys):
  from google.cloud.aiplatform_v1.types import job_state
  marker = tmp_path / 'ran.json'
  exec_properties = json.dumps({'custom_config': json.dumps({
      'params_override': json.dumps({'runtime': {
          'distribution_strategy': 'tpu', 'tpu': 'local'}})})})
  script = ('import json, os, sys; i = sys.argv.index("--exec-properties"); '
            f'json.dump([sys.executable, os.environ["REHEARSAL_TEST_ENV"], '
            f'sys.argv[i + 1]], open({str(marker)!r}, "w"))')
  command = ['python', '-c', script, '--exec-properties', exec_properties]
  job = client.create_custom_job(parent='projects/p/locations/us-central1',
                                 custom_job=_custom_job(command))
  assert job.state == job_state.JobState.JOB_STATE_SUCCEEDED
  assert client.get_custom_job(name=job.name) is job
  interpreter, env_value, seen = json.loads(marker.read_text())
  assert interpreter == sys.executable and env_value == 'set'
  override = json.loads(json.loads(json.loads(seen)['custom_config'])[
      'params_override'])
  assert override['runtime']['distribution_strategy'] == 'one_device'
  assert 'tpu' not in override['runtime']
  (captured,) = (tmp_path / 'captured').iterdir()
  saved = json.loads(captured.read_text())
  assert saved['parent'] == 'projects/p/locations/us-central1'
  pool = saved['custom_job']['job_spec']['worker_pool_specs'][0]
  assert pool['machine_spec']['accelerator_type'] == 'TPU_V5_LITEPOD'
  assert pool['container_spec']['command'] == command
  printed = capsys.readouterr().out
  assert '"machine_type": "ct5lp-hightpu-4t"' in printed
  assert 'accelerator runtime' in printed and 'exited 0' in printed


def test_a_failing_worker_fails_the_job(client):
  from google.cloud.aiplatform_v1.types import job_state
  job = client.create_custom_job(
      parent='projects/p/locations/us-central1',
      custom_job=_custom_job(['python', '-c', 'raise SystemExit(3)']))
  assert job.state == job_state.JobState.JOB_STATE_FAILED


def test_a_job_the_api_would_reject_is_rejected(client):
  job = _custom_job(['python', '-c', 'pass'])
  job['job_spec']['worker_pool_specs'][0]['machine_spec']['gpu_kind'] = 'x'
  with pytest.raises(ValueError, match='gpu_kind'):
    client.create_custom_job(parent='projects/p/locations/us-central1',
                             custom_job=job)
