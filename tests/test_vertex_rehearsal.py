"""Rehearses the compiled Vertex AI pipeline here, task by task.

The pipeline is compiled for Vertex exactly as for a real deployment (the
tiny experiment, 2 train steps, PQ bound 0 so that the gate blesses), the
synthetic sample is put under the mapped bucket, and `maskformer-tfx
rehearse-vertex` runs every task's compiled container command with the
executor input Vertex would pass: real TFX executors, Beam DirectRunner,
the Trainer's Vertex AI Training job captured by the fake client and run
here on the CPU strategy. After the pipeline, the exit handler runs with
the final status Vertex would pass: the good run's page is ReviewReport's
(the exit handler points at it), the run stopped at the data gate gets its
page from the exit handler.

The data root holds spans (`span-{SPAN}/train-*`): the good rehearsal reads
span 1; a second rehearsal on the same root, after span 2 (another sample
of the same distribution) arrives, reads span 2 and compares it with the
data of the first run's blessed model, which the latest-blessed-model
resolver returns from the rehearsal's ML Metadata.
"""

import json
import pathlib
import re
import shutil
from typing import Any, Dict

import pytest

from runners.vertex_rehearsal import fake_registry
from runners.vertex_rehearsal import spec as spec_lib
from runners.vertex_rehearsal import task_runner
from tests import pipeline_helpers
from runners.vertex import compiler
from runners.vertex import settings as vertex_settings
from tfx_pipeline.report import exit_handler
from tfx_pipeline.report import local_root

BUCKET = 'maskformer-bucket'
PIPELINE_ROOT = f'gs://{BUCKET}/pipelines/maskformer'
DATA_ROOT = f'gs://{BUCKET}/coco/tfrecords'
IMAGE = 'us-central1-docker.pkg.dev/maskformer-proj/ml/maskformer-tfx:1.0'
TRAIN_PATTERN, EVAL_PATTERN = 'span-{SPAN}/train-*', 'span-{SPAN}/val-*'
TRAINER_IMAGE = ('us-central1-docker.pkg.dev/maskformer-proj/ml/'
                 'maskformer-tfx-tpu:1.0')


@pytest.fixture(scope='module')
def compiled(tmp_path_factory) -> str:
  """The Vertex pipeline of the tiny experiment, compiled (TPU Trainer)."""
  settings = vertex_settings.VertexSettings(
      project='maskformer-proj', region='us-central1',
      pipeline_root=PIPELINE_ROOT, data_root=DATA_ROOT, image=IMAGE,
      trainer_image=TRAINER_IMAGE, experiment='maskformer_tiny',
      train_pattern=TRAIN_PATTERN, eval_pattern=EVAL_PATTERN,
      train_steps=2, eval_steps=1, pq_lower_bound=0.0,
      endpoint='maskformer-endpoint')
  output = tmp_path_factory.mktemp('rehearsal_compiled') / 'pipeline.json'
  return compiler.compile_pipeline(settings, str(output))


def _gcs_root_with_data(root: pathlib.Path, records: pathlib.Path,
                        eval_examples=None, span: int = 1) -> pathlib.Path:
  """A local Cloud Storage root whose DATA_ROOT holds `records`' splits as
  span `span`."""
  data = root / DATA_ROOT[len('gs://'):] / f'span-{span}'
  data.mkdir(parents=True)
  for path in records.glob('train-*'):
    shutil.copy(path, data / path.name)
  if eval_examples is None:
    for path in records.glob('val-*'):
      shutil.copy(path, data / path.name)
  else:
    pipeline_helpers.write_examples(data / 'val-00000-of-00001.tfrecord',
                                    eval_examples)
  return root


@pytest.fixture(scope='module')
def span_records(tmp_path_factory) -> Dict[int, pathlib.Path]:
  """{span: its TFRecords}: synthetic samples of one distribution (seeds 11
  and 12) of 40 train and 3 eval images of 64×64. The drift schema's
  thresholds are calibrated on spans of 40 images: two such spans do not
  drift, while spans of a few images differ by sampling noise alone."""
  from panoptic_data import sample_data
  return {span: sample_data.make_sample_tfrecords(
      tmp_path_factory.mktemp(f'span_{span}'), num_train=40, num_val=3,
      image_size=64, seed=10 + span) for span in (1, 2)}


@pytest.fixture(scope='module')
def rehearsals(compiled, synthetic_sample, span_records, tmp_path_factory
               ) -> Dict[str, Any]:
  """Two independent rehearsals, run side by side (each task is its own
  process, mostly single-threaded start-up): 'good' on span 1, 'anomaly' on
  the synthetic sample with an eval record lacking its category mask.
  Returns {name: (Cloud Storage root, CLI result)}."""
  records = synthetic_sample / 'tfrecords'
  bad_eval = pipeline_helpers.read_examples(str(records / 'val-*'))
  bad_eval[0] = pipeline_helpers.without_category_mask(bad_eval[0])
  roots = {
      'good': _gcs_root_with_data(tmp_path_factory.mktemp('rehearsal_gcs'),
                                  span_records[1]),
      'anomaly': _gcs_root_with_data(tmp_path_factory.mktemp('anomaly_gcs'),
                                     records, bad_eval)}
  outputs = {name: tmp_path_factory.mktemp(f'{name}_rehearsal_output')
             for name in roots}
  processes = {name: pipeline_helpers.start_cli(
      ['rehearse-vertex', '--compiled', compiled, '--gcs-root', str(root)],
      outputs[name]) for name, root in roots.items()}
  try:
    return {name: (roots[name], pipeline_helpers.finish_cli(
        process, outputs[name], timeout=1500))
            for name, process in processes.items()}
  finally:
    for process in processes.values():
      if process.poll() is None:
        process.kill()
        process.wait()


@pytest.fixture(scope='module')
def rehearsal(rehearsals) -> Dict[str, Any]:
  """The rehearsal on the synthetic sample: CLI result and its job directory."""
  root, result = rehearsals['good']
  return _succeeded(root, result)


def _succeeded(root: pathlib.Path, result) -> Dict[str, Any]:
  """A rehearsal that succeeded: its stdout and its job's directories."""
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-6000:]
  (job_id,) = re.findall(r'Rehearsal of the Vertex AI pipeline succeeded: '
                         r'(\S+)', result.stdout)
  job_root = (root / PIPELINE_ROOT[len('gs://'):] /
              task_runner.PROJECT_NUMBER / job_id)
  return {'root': root, 'job_root': job_root, 'stdout': result.stdout,
          'log_dir': root / '_rehearsal' / job_id}


@pytest.fixture(scope='module')
def second_rehearsal(compiled, rehearsal, span_records, tmp_path_factory
                     ) -> Dict[str, Any]:
  """The pipeline rehearsed again on the good rehearsal's root once span 2
  is there: it reads span 2, compares it with the data of the first run's
  blessed model, and its new model, blessed, becomes the second version of
  the registry model."""
  _gcs_root_with_data(rehearsal['root'], span_records[2], span=2)
  output = tmp_path_factory.mktemp('second_rehearsal_output')
  process = pipeline_helpers.start_cli(
      ['rehearse-vertex', '--compiled', compiled, '--gcs-root',
       str(rehearsal['root'])], output)
  return _succeeded(rehearsal['root'],
                    pipeline_helpers.finish_cli(process, output, timeout=1500))


def _task_dir(job_root: pathlib.Path, task: str) -> pathlib.Path:
  (task_dir,) = [p for p in job_root.iterdir()
                 if p.name.rsplit('_', 1)[0] == task]
  return task_dir


def test_every_task_exits_0_and_writes_its_artifacts(compiled, rehearsal):
  pipeline = spec_lib.load(compiled)
  stdout = rehearsal['stdout']
  for task in pipeline.in_dependency_order():
    assert f'  {task.name}: succeeded' in stdout, task.name
    if task.kind != 'container':
      continue
    task_dir = _task_dir(rehearsal['job_root'], task.name)
    executor_output = json.loads(
        (task_dir / 'executor_output.json').read_text())
    for key in task.component.get('outputDefinitions', {}).get('artifacts',
                                                               {}):
      artifact = executor_output['artifacts'][key]['artifacts'][0]
      assert artifact['uri'] == str(task_dir / key), (task.name, key)
      assert (task_dir / key).is_dir(), (task.name, key)
      # Transform's analyzer cache stays empty: nothing of ours is cached.
      if key != 'updated_analyzer_cache':
        assert any((task_dir / key).rglob('*')), (task.name, key)
    assert (rehearsal['log_dir'] / f'{task.name}.log').exists()
  statistics = _task_dir(rehearsal['job_root'], 'StatisticsGen') / 'statistics'
  assert (statistics / 'Split-eval' / 'FeatureStats.pb').exists()


def test_a_good_run_has_one_page_named_by_its_job_id(compiled, rehearsal):
  """ReviewReport's page is the run's; the exit handler, run after the
  pipeline with final status SUCCEEDED, only points at it."""
  assert list(spec_lib.load(compiled).exit_tasks) == [
      exit_handler.EXIT_HANDLER_ID]
  stdout = rehearsal['stdout']
  assert f'  {exit_handler.EXIT_HANDLER_ID}: succeeded' in stdout
  job_root = rehearsal['job_root']
  (page,) = job_root.rglob(local_root.REPORT_FILE)
  assert page == (_task_dir(job_root, local_root.REPORT_NODE) /
                  local_root.REPORT_OUTPUT / local_root.REPORT_FILE)
  assert f'Review page: {page}' in stdout
  pointer = (_task_dir(job_root, exit_handler.EXIT_HANDLER_ID) /
             local_root.REPORT_OUTPUT / exit_handler.RUN_PAGE_FILE)
  assert pointer.read_text().strip() == str(page)
  text = page.read_text(encoding='utf-8')
  assert f'<title>maskformer-tfx run {job_root.name}</title>' in text
  assert 'not available' not in text


def test_placeholders_and_substitutions_are_printed(rehearsal):
  stdout = rehearsal['stdout']
  assert 'Dataflow -> Beam DirectRunner: dropped --runner=DataflowRunner' in (
      stdout)
  assert "image interpreter 'python' -> " in stdout
  assert (f'parameter schema_file: image path '
          f'{vertex_settings.IMAGE_SCHEMA_FILE} -> ') in stdout
  assert (f'parameter input_base: {DATA_ROOT} -> '
          f'{rehearsal["root"] / BUCKET}/coco/tfrecords') in stdout
  # Resolver tasks: the first run in this root has no blessed model.
  assert stdout.count('no artifact (no baseline)') == 2


def test_trainer_custom_job_is_captured_and_run_on_the_cpu_strategy(
    rehearsal):
  (captured,) = (rehearsal['log_dir'] / 'custom_jobs').iterdir()
  job = json.loads(captured.read_text())
  assert job['parent'] == 'projects/maskformer-proj/locations/us-central1'
  assert job['endpoint'] == 'us-central1-aiplatform.googleapis.com'
  (pool,) = job['custom_job']['job_spec']['worker_pool_specs']
  assert pool['machine_spec'] == {
      'machine_type': 'ct5lp-hightpu-8t', 'accelerator_type': 'TPU_V5_LITEPOD',
      'accelerator_count': 8, 'tpu_topology': '2x4'}
  assert pool['container_spec']['image_uri'] == TRAINER_IMAGE
  assert pool['container_spec']['command'][:3] == [
      'python', '-m', 'tfx.scripts.run_executor']
  trainer_log = (rehearsal['log_dir'] / 'Trainer.log').read_text()
  assert ('accelerator runtime {"distribution_strategy": "tpu", '
          '"mixed_precision_dtype": "bfloat16", "tpu": "local"} -> CPU') in (
              trainer_log)
  assert 'custom job worker pool 0: exited 0' in trainer_log
  model_dir = _task_dir(rehearsal['job_root'], 'Trainer') / 'model'
  assert list(model_dir.rglob('saved_model.pb'))


def test_the_gate_blesses_and_the_pusher_pushes_under_the_mapped_bucket(
    rehearsal):
  blessing = _task_dir(rehearsal['job_root'], 'Evaluator') / 'blessing'
  assert (blessing / 'BLESSED').exists()
  assert 'Evaluator blessing: blessed' in rehearsal['stdout']
  pushed = rehearsal['root'] / BUCKET / 'pipelines/maskformer/pushed_models'
  (version,) = pushed.iterdir()
  assert (version / 'saved_model.pb').exists()
  # Uploaded to the fake Model Registry and deployed: the requests as the
  # Vertex AI API types hold them, under GCS_ROOT/_vertex_requests.
  requests = rehearsal['root'] / fake_registry.REQUESTS_DIR
  assert sorted(path.name for path in requests.iterdir()) == [
      'create_endpoint_1.json', 'deploy_model_1.json', 'upload_model_1.json']
  upload = json.loads((requests / 'upload_model_1.json').read_text())
  assert 'parent_model' not in upload  # The first version of the model.
  assert upload['model']['artifact_uri'] == str(version)
  assert upload['model']['version_aliases'][0] == 'blessed'
  description = upload['model']['version_description']
  assert description.startswith('all: PQ ')
  assert f'{rehearsal["job_root"]}/ReviewReport_*/report/report.html' in (
      description)
  assert upload['model']['labels']['run'] == rehearsal['job_root'].name
  model = 'projects/maskformer-proj/locations/us-central1/models/1'
  assert f'Pushed model: {model}@1' in rehearsal['stdout']
  deploy = json.loads((requests / 'deploy_model_1.json').read_text())
  assert deploy['deployed_model']['model'] == f'{model}@1'
  assert deploy['traffic_split'] == {'0': 100}
  # The documented request, answered locally by the deployed version.
  assert (f'Online request to the deployed model ({version}): '
          '{"instances": [{"b64": <') in rehearsal['stdout']
  # (The 2-step model's segments depend on its untrained scores.)
  assert re.search(r'\}\]\} -> a 64x64 panoptic PNG, \d+ segments\n',
                   rehearsal['stdout'])


def test_a_second_run_uploads_a_new_version_and_replaces_the_deployment(
    rehearsal, second_rehearsal):
  requests = rehearsal['root'] / fake_registry.REQUESTS_DIR
  assert sorted(path.name for path in requests.iterdir()) == [
      'create_endpoint_1.json', 'deploy_model_1.json', 'deploy_model_2.json',
      'undeploy_model_1.json', 'upload_model_1.json', 'upload_model_2.json']
  model = 'projects/maskformer-proj/locations/us-central1/models/1'
  upload = json.loads((requests / 'upload_model_2.json').read_text())
  assert upload['parent_model'] == model
  assert upload['model']['version_aliases'][0] == 'blessed'
  assert upload['model']['labels']['run'] == (
      second_rehearsal['job_root'].name)
  pushed = rehearsal['root'] / BUCKET / 'pipelines/maskformer/pushed_models'
  versions = sorted(pushed.iterdir())
  assert len(versions) == 2
  assert upload['model']['artifact_uri'] == str(versions[-1])
  assert f'Pushed model: {model}@2' in second_rehearsal['stdout']
  # 100 % of the traffic to the new version; the first one is undeployed
  # once the new one serves.
  deploy = json.loads((requests / 'deploy_model_2.json').read_text())
  assert deploy['deployed_model']['model'] == f'{model}@2'
  split = deploy['traffic_split']
  assert split.pop('0') == 100 and set(split.values()) <= {0}, split
  undeploy = json.loads((requests / 'undeploy_model_1.json').read_text())
  assert undeploy['deployed_model_id'] == '1'


def _examples_span(job_root: pathlib.Path) -> int:
  """The span on ImportExampleGen's Examples, as the job recorded it."""
  output = json.loads((_task_dir(job_root, 'ImportExampleGen') /
                       'executor_output.json').read_text())
  metadata = output['artifacts']['examples']['artifacts'][0]['metadata']
  # TFX's Vertex entrypoint writes custom properties as `custom:<name>`.
  return int(metadata['custom:span'])


def test_each_run_reads_the_latest_span(rehearsal, second_rehearsal):
  """ImportExampleGen's driver resolves `{SPAN}` to the latest span, and the
  executor reads that span's files (the parameters the driver wrote)."""
  assert _examples_span(rehearsal['job_root']) == 1
  assert _examples_span(second_rehearsal['job_root']) == 2
  for run, span in ((rehearsal, 1), (second_rehearsal, 2)):
    assert re.search(rf'driver: parameter input_config -> .*span-{span}/'
                     r'train-\*', run['stdout']), run['stdout'][-3000:]


def _drift(job_root: pathlib.Path) -> Dict[str, Any]:
  return json.loads((_task_dir(job_root, 'DriftValidator') / 'drift' /
                     'drift.json').read_text())


def test_the_second_span_is_compared_with_the_first_runs_blessed_model(
    rehearsal, second_rehearsal):
  """The resolver tasks return nothing to the first run (no baseline) and
  the first run's blessed model to the second, whose DriftValidator reads
  the statistics stored in that model: span 2 did not drift from span 1."""
  first = _drift(rehearsal['job_root'])
  assert first['baseline_model'] is None and first['drifted'] is False
  assert first['span'] == 1 and first['features'] == []
  second = _drift(second_rehearsal['job_root'])
  first_model = _task_dir(rehearsal['job_root'], 'Trainer') / 'model'
  assert second['baseline_model'] == str(first_model)
  assert second['baseline_statistics'].startswith(str(first_model))
  assert pathlib.Path(second['baseline_statistics']).is_file()
  assert second['span'] == 2
  assert second['drifted'] is False, second['features']
  assert {entry['feature'] for entry in second['features']} >= {
      'segment_category', 'num_segments'}
  assert '  DriftGate: succeeded' in second_rehearsal['stdout']
  (page,) = second_rehearsal['job_root'].glob('ReviewReport_*/report/'
                                              'report.html')
  text = page.read_text(encoding='utf-8')
  assert ('id="drift-verdict">NO DRIFT</b> against the data of blessed model '
          f'<code>{first_model}</code>') in text
  assert '<svg class="drift-bars"' in text


def test_data_with_an_anomaly_stops_at_the_gate(rehearsals):
  root, result = rehearsals['anomaly']
  output = result.stdout + result.stderr
  assert result.returncode == 1, output[-6000:]
  assert '  DataValidationGate: failed' in result.stdout
  assert "feature 'image/panoptic/category_mask'" in result.stdout
  assert 'Task DataValidationGate failed; Vertex AI Pipelines stops the run' in (
      result.stdout)
  for task in ('Transform', 'Trainer', 'Evaluator', 'Pusher'):
    assert f'  {task}: not run' in result.stdout
  (job_root,) = (root / PIPELINE_ROOT[len('gs://'):] /
                 task_runner.PROJECT_NUMBER).iterdir()
  assert list(job_root.glob('ExampleValidator_*/anomalies/Split-eval'))
  assert not list(job_root.glob('Transform_*'))
  gate_log = root / '_rehearsal' / job_root.name / 'DataValidationGate.log'
  assert 'DataValidationError: Data validation failed' in gate_log.read_text()
  # The exit handler ran with final status FAILED and wrote the run's page
  # from what the job's tasks wrote.
  assert f'  {exit_handler.EXIT_HANDLER_ID}: succeeded' in result.stdout
  (page,) = job_root.rglob(local_root.REPORT_FILE)
  assert page == (_task_dir(job_root, exit_handler.EXIT_HANDLER_ID) /
                  local_root.REPORT_OUTPUT / local_root.REPORT_FILE)
  assert f'Review page: {page}' in result.stdout
  text = page.read_text(encoding='utf-8')
  assert f'<title>maskformer-tfx run {job_root.name}</title>' in text
  assert '<li class="bad">DataValidationGate: failed</li>' in text
  assert 'The run failed at DataValidationGate' in text
  assert 'DataValidationGate: <b class="bad">FAILED</b>' in text
  assert 'image/panoptic/category_mask' in text
  assert 'train (6 examples)' in text and 'eval (3 examples)' in text
  assert '<li class="muted">Trainer: did not run</li>' in text
