"""Compiles the pipeline for Vertex AI Pipelines, offline, and checks the JSON.

The compiled PipelineJob is parsed with KFP's own protos, the Beam arguments
with Beam's own option parser, the Trainer's job spec with the Vertex AI
API types and the params override with TF Model Garden's: each check uses
the library that will read the value in production. Nothing here reaches
Google Cloud: submission is tested against a fake `aiplatform.PipelineJob`.
"""

import argparse
import json
import os
import pathlib
import re
import sys
import tempfile
from typing import Any, Dict, List

import pytest

from runners.commands import compile_vertex
from runners.vertex import compiler
from runners.vertex import dataflow
from runners.vertex import settings as vertex_settings
from runners.vertex import validation
from runners.vertex import worker_pool
from runners.vertex.settings import VertexSettings
from tfx_pipeline.report import component
from tfx_pipeline.report import exit_handler

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

PROJECT = 'maskformer-proj'
REGION = 'us-central1'
PIPELINE_ROOT = 'gs://maskformer-bucket/pipelines/maskformer'
DATA_ROOT = 'gs://maskformer-bucket/coco/tfrecords'
IMAGE = 'us-central1-docker.pkg.dev/maskformer-proj/ml/maskformer-tfx:1.0'
TRAINER_IMAGE = ('us-central1-docker.pkg.dev/maskformer-proj/ml/'
                 'maskformer-tfx-tpu:1.0')
SERVICE_ACCOUNT = 'pipelines@maskformer-proj.iam.gserviceaccount.com'
INIT_CHECKPOINT = 'gs://maskformer-bucket/weights/r50_detectron2'

# The data half of the pipeline: (upstream, downstream) task edges.
DATA_EDGES = {
    ('ImportExampleGen', 'StatisticsGen'),
    ('ImportSchemaGen', 'StatisticsGen'),
    ('StatisticsGen', 'ExampleValidator'),
    ('ImportSchemaGen', 'ExampleValidator'),
    ('ExampleValidator', 'DataValidationGate'),
    ('DataValidationGate', 'Transform'),
    ('ImportExampleGen', 'Transform'),
}
# Component ids of the model half.
TRAINER = 'Trainer'
RESOLVER = 'latest_blessed_model_resolver'  # KFP splits it into '<id>-*' tasks.
EVALUATOR = 'Evaluator'
PUSHER = 'Pusher'
MODEL_EDGES = {
    ('Transform', TRAINER),
    (TRAINER, EVALUATOR),
    (RESOLVER, EVALUATOR),
    (EVALUATOR, PUSHER),
    (TRAINER, PUSHER),
}
# -----------------------------------------------------------------------------
BEAM_COMPONENTS = ('ImportExampleGen', 'StatisticsGen', 'Transform', EVALUATOR)
CREDENTIAL_PATTERNS = (
    r'ya29\.[0-9A-Za-z_-]+',             # OAuth access token
    r'AIza[0-9A-Za-z_-]{35}',             # API key
    r'-----BEGIN [A-Z ]*PRIVATE KEY-----',
    r'"?private_key(_id)?"?\s*:',
    r'client_secret', r'refresh_token', r'access_token', r'id_token',
    r'GOOGLE_APPLICATION_CREDENTIALS', r'Bearer ',
)


def _settings(**changes: Any) -> VertexSettings:
  values = dict(project=PROJECT, region=REGION, pipeline_root=PIPELINE_ROOT,
                data_root=DATA_ROOT, image=IMAGE)
  values.update(changes)
  return VertexSettings(**values)


def _cli_args(**changes: str) -> List[str]:
  flags = {'--project': PROJECT, '--region': REGION,
           '--pipeline-root': PIPELINE_ROOT, '--data': DATA_ROOT,
           '--image': IMAGE}
  flags.update(changes)
  argv = []
  for flag, value in flags.items():
    if value is None:
      continue
    # A value that looks like a flag must be attached to its own flag.
    argv.extend([f'{flag}={value}'] if value.startswith('--') else
                [flag, value])
  return argv


def _parse(argv: List[str]) -> argparse.Namespace:
  parser = argparse.ArgumentParser(prog='maskformer-tfx')
  subparsers = parser.add_subparsers(dest='command', required=True)
  compile_vertex.add_parser(subparsers)
  return parser.parse_args(['compile-vertex', *argv])


class _ForbiddenPipelineJob:
  """Stands in for aiplatform.PipelineJob where nothing may be submitted."""

  def __init__(self, *args, **kwargs):
    raise AssertionError('PipelineJob was constructed: the invalid settings '
                         'were not caught before submission.')


class _FakePipelineJob:
  """Records what the runner would submit (no network)."""
  created: List[Dict[str, Any]] = []
  submitted: List[Dict[str, Any]] = []

  def __init__(self, **kwargs):
    _FakePipelineJob.created.append(kwargs)
    self.name = 'maskformer-tfx-20250101000000'

  def submit(self, **kwargs):
    _FakePipelineJob.submitted.append(kwargs)


@pytest.fixture(scope='module')
def compiled(tmp_path_factory) -> Dict[str, Any]:
  """The full pipeline compiled for Vertex: file, text and parsed protos."""
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  output = tmp_path_factory.mktemp('vertex') / 'maskformer.json'
  # A TFMG experiment config file (--config_file), then --params_override.
  config_file = output.parent / 'experiment.yaml'
  config_file.write_text('task:\n  train_data: {global_batch_size: 48}\n'
                         '  validation_data: {global_batch_size: 8}\n')
  settings = _settings(trainer_image=TRAINER_IMAGE,
                       service_account=SERVICE_ACCOUNT, train_steps=1000,
                       init_checkpoint=INIT_CHECKPOINT,
                       config_files=[str(config_file)],
                       params_override='task.train_data.global_batch_size=64',
                       endpoint='maskformer-endpoint', max_replicas=3,
                       traffic_percent=10)
  path = compiler.compile_pipeline(settings, str(output))
  text = pathlib.Path(path).read_text(encoding='utf-8')
  job = json_format.Parse(text, pipeline_spec_pb2.PipelineJob())
  spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                               pipeline_spec_pb2.PipelineSpec())
  executors = json_format.MessageToDict(spec.deployment_spec)['executors']
  return {'path': path, 'text': text, 'job': job, 'spec': spec,
          'executors': executors, 'settings': settings}


def _dag_tasks(spec) -> Any:
  """The pipeline's tasks: the `tfx-dag` sub-DAG that TFX compiles when the
  pipeline has an exit handler (the root DAG holds it and the handler)."""
  return spec.components['tfx-dag'].dag.tasks


def _task_parameters(spec, task: str) -> Dict[str, Any]:
  parameters = _dag_tasks(spec)[task].inputs.parameters
  # TFX 1.16 writes the (deprecated) constant_value field of KFP's schema 2.0.
  return {name: value.runtime_value.constant_value.string_value
          for name, value in parameters.items()}


def _executor(compiled_pipeline, task: str) -> Dict[str, Any]:
  spec = compiled_pipeline['spec']
  tasks = _dag_tasks(spec)
  task_spec = tasks[task] if task in tasks else spec.root.dag.tasks[task]
  label = spec.components[task_spec.component_ref.name].executor_label
  return compiled_pipeline['executors'][label]


def _task_of(spec, component_id: str) -> str:
  tasks = [name for name in _dag_tasks(spec)
           if name == component_id or name.startswith(component_id + '-')]
  assert tasks, f'{component_id} is not in the compiled pipeline'
  return tasks[0]


def _depends_on(spec, downstream: str, upstream: str) -> bool:
  dependencies = _dag_tasks(spec)[downstream].dependent_tasks
  return any(d == upstream or d.startswith(upstream + '-')
             for d in dependencies)


def _beam_options(args: List[str]) -> Dict[str, Any]:
  from apache_beam.options import pipeline_options
  return pipeline_options.PipelineOptions(flags=args).get_all_options(
      drop_default=True)


def test_every_component_is_compiled_with_its_dependencies(compiled):
  spec = compiled['spec']
  for upstream, downstream in sorted(DATA_EDGES | MODEL_EDGES):
    downstream_task = _task_of(spec, downstream)
    assert _depends_on(spec, downstream_task, upstream), (
        f'{downstream_task} does not depend on {upstream}: '
        f'{list(_dag_tasks(spec)[downstream_task].dependent_tasks)}')
  # InfraValidator does not run on Vertex AI Pipelines.
  assert not any('InfraValidator' in name for name in _dag_tasks(spec))
  assert compiled['job'].runtime_config.gcs_output_directory == PIPELINE_ROOT


def test_every_container_runs_the_given_image(compiled):
  images = {}
  for task in [*_dag_tasks(compiled['spec']),
               exit_handler.EXIT_HANDLER_ID]:
    executor = _executor(compiled, task)
    if 'resolver' in executor:  # Runs inside Vertex AI Pipelines itself.
      assert task.startswith(RESOLVER + '-'), task
      continue
    images[task] = executor['container']['image']
  assert set(images.values()) == {IMAGE}, images
  assert TRAINER in images and 'Transform' in images


def test_the_exit_handler_writes_the_page_of_a_run_stopped_early(compiled):
  """After the pipeline (the tfx-dag sub-DAG), whatever its outcome, the
  exit handler gets the job's final status and the pipeline root."""
  from tfx.utils import import_utils
  import yaml
  spec = compiled['spec']
  root_tasks = spec.root.dag.tasks
  assert set(root_tasks) == {'tfx-dag', exit_handler.EXIT_HANDLER_ID}
  task = root_tasks[exit_handler.EXIT_HANDLER_ID]
  assert list(task.dependent_tasks) == ['tfx-dag']
  assert task.trigger_policy.strategy == (
      task.trigger_policy.TriggerStrategy.ALL_UPSTREAM_TASKS_COMPLETED)
  parameters = task.inputs.parameters
  assert parameters['final_status'].task_final_status.producer_task == (
      'tfx-dag')
  assert parameters['pipeline_root'].runtime_value.constant_value.string_value == (
      PIPELINE_ROOT)
  assert 'ReviewReport' in _dag_tasks(spec)  # The page of a run that succeeds.
  args = _executor(compiled, exit_handler.EXIT_HANDLER_ID)['container']['args']
  executor_class = args[args.index('--executor_class_path') + 1]
  assert import_utils.import_class_by_path(executor_class) is (
      exit_handler.ReviewReportOnExit.EXECUTOR_SPEC.executor_class)
  component_def = spec.components[task.component_ref.name]
  schema = yaml.safe_load(component_def.output_definitions.artifacts[
      'report'].artifact_type.instance_schema)
  assert import_utils.import_class_by_path(schema['title']) is (
      component.ReviewReportPage)


def test_schema_is_read_from_the_image(compiled):
  parameters = _task_parameters(compiled['spec'], 'ImportSchemaGen')
  assert parameters['schema_file'] == vertex_settings.IMAGE_SCHEMA_FILE
  dockerfile = (REPO_ROOT / 'Dockerfile').read_text(encoding='utf-8')
  assert re.search(r'^ARG PIPELINE_DIR=(\S+)$', dockerfile, re.M).group(1) == (
      vertex_settings.IMAGE_PACKAGE_DIR)
  assert vertex_settings.IMAGE_SCHEMA_FILE == (
      vertex_settings.IMAGE_PACKAGE_DIR + '/schemas/raw_schema.pbtxt')


def test_drift_check_is_compiled_before_the_trainer(compiled, tmp_path,
                                                    capsys):
  """PanopticStatisticsGen (on Dataflow) -> DriftValidator, whose baseline is
  the latest-blessed-model resolver's model -> DriftGate -> Trainer; the
  drift schema is read from the image; --allow-drift and --drift-schema
  reach the DriftValidator and the schema import."""
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  spec = compiled['spec']
  for upstream, downstream in (
      ('ImportExampleGen', 'PanopticStatisticsGen'),
      ('DataValidationGate', 'PanopticStatisticsGen'),
      ('PanopticStatisticsGen', 'DriftValidator'),
      ('DriftSchemaGen', 'DriftValidator'), (RESOLVER, 'DriftValidator'),
      ('DriftValidator', 'DriftGate'), ('DriftGate', TRAINER),
      ('PanopticStatisticsGen', TRAINER), ('DriftValidator', 'ReviewReport')):
    assert _depends_on(spec, _task_of(spec, downstream), upstream), (
        upstream, downstream)
  baseline = _dag_tasks(spec)['DriftValidator'].inputs.artifacts[
      'baseline_model'].task_output_artifact
  assert baseline.producer_task.startswith(RESOLVER)
  assert _task_parameters(spec, 'DriftSchemaGen')['schema_file'] == (
      vertex_settings.IMAGE_DRIFT_SCHEMA_FILE)
  assert (REPO_ROOT / vertex_settings.IMAGE_DRIFT_SCHEMA_FILE[
      len(vertex_settings.IMAGE_PACKAGE_DIR) + 1:]).is_file()
  allow = _dag_tasks(spec)['DriftValidator'].inputs.parameters['allow_drift']
  assert allow.runtime_value.constant_value.int_value == 0
  beam_args = list(_executor(compiled, 'PanopticStatisticsGen')['container'][
      'args'])
  assert '--runner=DataflowRunner' in ' '.join(beam_args)

  output = tmp_path / 'pipeline.json'
  schema = 'gs://maskformer-bucket/schemas/drift.pbtxt'
  args = _parse(_cli_args(**{'--output': str(output), '--allow-drift': None,
                             '--drift-schema': schema}) + ['--allow-drift'])
  assert compile_vertex.handle(args) == 0, capsys.readouterr().err
  job = json_format.Parse(output.read_text(encoding='utf-8'),
                          pipeline_spec_pb2.PipelineJob())
  allowed = json_format.ParseDict(
      json_format.MessageToDict(job.pipeline_spec),
      pipeline_spec_pb2.PipelineSpec())
  allow = _dag_tasks(allowed)['DriftValidator'].inputs.parameters[
      'allow_drift']
  assert allow.runtime_value.constant_value.int_value == 1
  assert _task_parameters(allowed, 'DriftSchemaGen')['schema_file'] == schema


def test_beam_components_run_on_dataflow(compiled):
  for component_id in BEAM_COMPONENTS:
    container = _executor(compiled, _task_of(compiled['spec'], component_id)
                          )['container']
    options = _beam_options(container['args'])
    assert options['runner'] == 'DataflowRunner', component_id
    assert options['project'] == PROJECT
    assert options['region'] == REGION
    assert options['temp_location'].startswith(PIPELINE_ROOT + '/')
    assert options['sdk_container_image'] == IMAGE
    assert 'use_runner_v2' in options['experiments']
    assert options['service_account_email'] == SERVICE_ACCOUNT
    expected_machine = {
        'Transform': 'n2-highmem-16', EVALUATOR: 'n2-highmem-16',
    }.get(component_id, 'n2-standard-8')
    assert options['machine_type'] == expected_machine, component_id


def test_trainer_requests_the_tpu_worker_pool(compiled):
  from google.cloud.aiplatform_v1.types import custom_job
  task = _task_of(compiled['spec'], TRAINER)
  container = _executor(compiled, task)['container']
  # TFX's Vertex AI training-job executor (a subclass that then stores the
  # statistics the model was trained on, the drift baseline).
  from tfx.extensions.google_cloud_ai_platform.trainer import executor
  from tfx.utils import import_utils
  assert issubclass(import_utils.import_class_by_path(container['args'][1]),
                    executor.GenericExecutor)
  custom_config = json.loads(
      _task_parameters(compiled['spec'], task)['custom_config'])
  assert custom_config['ai_platform_enable_vertex'] is True
  assert custom_config['ai_platform_vertex_region'] == REGION
  assert custom_config['experiment'] == 'maskformer_coco_panoptic'
  training_args = dict(custom_config['ai_platform_training_args'])
  assert training_args.pop('project') == PROJECT
  # The Vertex AI API type accepts the spec as TFX's extension sends it.
  job_spec = custom_job.CustomJobSpec(**training_args['job_spec'])
  (pool,) = job_spec.worker_pool_specs
  # The default slice: 8 v5e chips, 8 of the 64 images each (a 4-chip
  # slice's 16 do not fit a chip: docs/training_on_tpu.md).
  assert pool.machine_spec.machine_type == 'ct5lp-hightpu-8t'
  assert pool.machine_spec.accelerator_type.name == 'TPU_V5_LITEPOD'
  assert pool.machine_spec.accelerator_count == 8
  assert pool.machine_spec.tpu_topology == '2x4'
  assert pool.replica_count == 1
  assert pool.container_spec.image_uri == TRAINER_IMAGE
  assert job_spec.service_account == SERVICE_ACCOUNT


def test_pusher_uploads_blessed_models_to_the_model_registry(compiled):
  task = _task_of(compiled['spec'], PUSHER)
  container = _executor(compiled, task)['container']
  assert container['args'][1] == 'tfx_pipeline.vertex_pusher.Executor'
  parameters = _task_parameters(compiled['spec'], task)
  registry = json.loads(parameters['custom_config'])['vertex_registry']
  assert registry['project'] == PROJECT and registry['region'] == REGION
  assert registry['display_name'] == 'maskformer-tfx'
  assert registry['serving_image'] == vertex_settings.DEFAULT_SERVING_IMAGE
  assert registry['labels'] == {'pipeline': 'maskformer-tfx',
                                'experiment': 'maskformer_coco_panoptic'}
  assert registry['data_root'] == DATA_ROOT
  assert registry['report_location'] == (
      '{job_dir}/ReviewReport_*/report/report.html')
  assert registry['endpoint'] == {
      'name': 'maskformer-endpoint', 'machine_type': 'n1-standard-4',
      'min_replicas': 1, 'max_replicas': 3, 'traffic_percent': 10}
  destination = json.loads(parameters['push_destination'])
  assert destination['filesystem']['base_directory'] == (
      f'{PIPELINE_ROOT}/pushed_models')


def test_trainer_runs_the_experiment_on_the_tpu_strategy(compiled):
  from official.core import exp_factory
  from official.modeling import hyperparams
  from trainer_module import registry_imports
  task = _task_of(compiled['spec'], TRAINER)
  custom_config = json.loads(
      _task_parameters(compiled['spec'], task)['custom_config'])
  params = hyperparams.override_params_dict(
      exp_factory.get_exp_config(custom_config['experiment']),
      custom_config['params_override'], is_strict=True)
  assert params.runtime.distribution_strategy == 'tpu'
  assert params.runtime.tpu == 'local'
  assert params.runtime.mixed_precision_dtype == 'bfloat16'
  # The config file first, then --params_override, as TFMG applies them.
  assert params.task.train_data.global_batch_size == 64
  assert params.task.validation_data.global_batch_size == 8


def test_trainer_initialises_from_the_given_checkpoint(compiled):
  from trainer_module.run_fn import build_experiment_config
  task = _task_of(compiled['spec'], TRAINER)
  custom_config = json.loads(
      _task_parameters(compiled['spec'], task)['custom_config'])
  assert custom_config['init_checkpoint'] == INIT_CHECKPOINT
  fn_args = argparse.Namespace(
      custom_config=custom_config, materialized=False,
      train_files=['gs://b/train-*'], eval_files=['gs://b/val-*'],
      train_steps=None, eval_steps=None, transform_output=None)
  custom_config['materialized'] = True  # No transform graph to read here.
  params = build_experiment_config(fn_args)
  assert params.task.init_checkpoint == INIT_CHECKPOINT
  assert params.task.init_checkpoint_modules == 'backbone'


def test_compiled_json_has_no_local_paths_or_credentials(compiled):
  text = compiled['text']
  import schemas
  local = {os.getcwd(), os.path.expanduser('~'), tempfile.gettempdir(),
           str(REPO_ROOT), sys.prefix, os.environ.get('PWD', '/'),
           os.path.dirname(compiled['path']),
           os.path.dirname(schemas.schema_path(schemas.RAW_SCHEMA_FILE))}
  for path in sorted(p for p in local if p not in ('', '/')):
    # As a path of its own (inside gs:// URLs a segment may look alike).
    assert not re.search(r'(?<![\w.:/-])' + re.escape(path) + r'(?![\w.-])',
                         text), path
  for pattern in CREDENTIAL_PATTERNS:
    assert not re.search(pattern, text, re.I), pattern
  secrets = [value for name, value in os.environ.items()
             if re.search(r'TOKEN|SECRET|PASSWORD|CREDENTIAL|API_KEY', name)
             and len(value) >= 8]
  for value in secrets:
    assert value not in text


def test_submit_creates_a_pipeline_job_with_the_compiled_file(
    tmp_path, monkeypatch, capsys):
  from google.cloud import aiplatform
  monkeypatch.setattr(aiplatform, 'PipelineJob', _FakePipelineJob)
  _FakePipelineJob.created.clear()
  _FakePipelineJob.submitted.clear()
  output = tmp_path / 'pipeline.json'
  args = _parse(_cli_args(**{'--output': str(output),
                             '--service-account': SERVICE_ACCOUNT})
                + ['--submit'])
  assert compile_vertex.handle(args) == 0
  (created,) = _FakePipelineJob.created
  assert created['template_path'] == str(output)
  assert created['project'] == PROJECT
  assert created['location'] == REGION
  assert created['pipeline_root'] == PIPELINE_ROOT
  assert _FakePipelineJob.submitted == [{'service_account': SERVICE_ACCOUNT}]
  assert json.loads(output.read_text())['pipelineSpec']['components'][
      'tfx-dag']['dag']['tasks']
  printed = capsys.readouterr().out
  assert (f'https://console.cloud.google.com/vertex-ai/locations/{REGION}/'
          'pipelines/runs/maskformer-tfx-20250101000000'
          f'?project={PROJECT}') in printed


@pytest.mark.parametrize('changes, message', [
    ({'--pipeline-root': '/tmp/pipeline-root'}, '--pipeline-root'),
    ({'--data': 'maskformer-bucket/coco'}, '--data'),
    ({'--project': None}, 'project (--project) is required'),
    ({'--region': 'us-central1-a'}, 'is a zone'),
    ({'--image': None}, 'image (--image) is required'),
    ({'--image': 'maskformer-tfx:latest'}, 'is not a container image URI'),
    ({'--accelerator-type': 'TPU_V9'}, 'Unknown or unsupported TPU type'),
    ({'--accelerator-type': 'NVIDIA_TESLA_X1'}, 'Unknown --accelerator-type'),
    ({'--accelerator-type': 'NVIDIA_TESLA_A100'}, 'not a GPU machine type'),
    ({'--trainer-machine-type': 'ct5lp-hightpu-16t'},
     'not a single-host TPU VM'),
    ({'--tpu-topology': '4x4'}, 'does not match ct5lp-hightpu-8t'),
    ({'--accelerator-count': '4'}, 'does not match ct5lp-hightpu-8t'),
    ({'--params-override': 'runtime: {distribution_strategy: mirrored}'},
     'contradicts'),
    ({'--service-account': 'pipelines'}, 'not a service account'),
    ({'--transform-machine-type': 'huge'}, '--transform-machine-type'),
    ({'--pq-lower-bound': '46.5'}, '--pq-lower-bound'),
    ({'--traffic-percent': '10'}, '--traffic-percent need --endpoint'),
    ({'--endpoint': 'ep', '--traffic-percent': '0'},
     '--traffic-percent must be 1 to 100, got 0'),
    ({'--endpoint': 'ep', '--min-replicas': '2'},
     '--max-replicas (1) must be at least --min-replicas (2)'),
    ({'--endpoint': 'ep', '--serving-machine-type': 'ct5lp-hightpu-4t'},
     '--serving-machine-type'),
    ({'--serving-image': 'tf-serving'}, '--serving-image'),
    ({'--init-checkpoint': '/weights/r50'}, '--init-checkpoint'),
    ({'--drift-schema': '/tmp/drift_schema.pbtxt'}, '--drift-schema'),
    ({'--beam-arg': '--setup_file=./setup.py'}, 'path of this machine'),
    ({'--span': '2'}, '--span 2 selects one span of split patterns with'),
])
def test_wrong_settings_fail_before_compiling_or_submitting(
    changes, message, tmp_path, monkeypatch, capsys):
  from google.cloud import aiplatform
  monkeypatch.setattr(aiplatform, 'PipelineJob', _ForbiddenPipelineJob)
  output = tmp_path / 'pipeline.json'
  args = _parse(_cli_args(**{'--output': str(output), **changes})
                + ['--submit'])
  assert compile_vertex.handle(args) == 2
  error = capsys.readouterr().err
  assert 'Invalid Vertex settings' in error
  assert message in error
  assert not output.exists()


def test_span_patterns_and_span_n_reach_import_example_gen(tmp_path, capsys):
  from google.protobuf import json_format
  from kfp.pipeline_spec import pipeline_spec_pb2
  from tfx.proto import example_gen_pb2
  from tfx.proto import range_config_pb2
  output = tmp_path / 'pipeline.json'
  args = _parse(_cli_args(**{
      '--output': str(output), '--train-pattern': 'span-{SPAN}/train-*',
      '--eval-pattern': 'span-{SPAN}/val-*', '--span': '3'}))
  assert compile_vertex.handle(args) == 0, capsys.readouterr().err
  job = json_format.Parse(output.read_text(encoding='utf-8'),
                          pipeline_spec_pb2.PipelineJob())
  spec = json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec),
                               pipeline_spec_pb2.PipelineSpec())
  parameters = _task_parameters(spec, 'ImportExampleGen')
  # ImportExampleGen's driver on Vertex finds the span's files at run time.
  input_config = json_format.Parse(parameters['input_config'],
                                   example_gen_pb2.Input())
  assert [(split.name, split.pattern) for split in input_config.splits] == [
      ('train', 'span-{SPAN}/train-*'), ('eval', 'span-{SPAN}/val-*')]
  static_range = json_format.Parse(parameters['range_config'],
                                   range_config_pb2.RangeConfig()).static_range
  assert (static_range.start_span_number, static_range.end_span_number) == (
      3, 3)


def test_unknown_experiment_fails_before_compiling(tmp_path, monkeypatch,
                                                   capsys):
  from google.cloud import aiplatform
  monkeypatch.setattr(aiplatform, 'PipelineJob', _ForbiddenPipelineJob)
  output = tmp_path / 'pipeline.json'
  args = _parse(_cli_args(**{'--output': str(output),
                             '--experiment': 'maskformer_nonexistent'})
                + ['--submit'])
  assert compile_vertex.handle(args) == 2
  assert 'maskformer_nonexistent' in capsys.readouterr().err
  assert not output.exists()


@pytest.mark.parametrize('spelling', ['--config_file', '--config-file'])
def test_config_file_with_a_key_the_experiment_lacks_fails_before_compiling(
    spelling, tmp_path, capsys):
  config_file = tmp_path / 'experiment.yaml'
  config_file.write_text('task:\n  train_data: {global_batch_sise: 48}\n')
  output = tmp_path / 'pipeline.json'
  args = _parse(_cli_args(**{'--output': str(output),
                             spelling: str(config_file),
                             '--params_override': 'trainer.train_steps=5'}))
  assert args.params_override == 'trainer.train_steps=5'
  assert compile_vertex.handle(args) == 2
  error = capsys.readouterr().err
  assert f'--config_file {config_file}' in error
  assert 'task.train_data.global_batch_sise' in error
  assert not output.exists()


def test_yaml_settings_are_loaded_and_flags_win(tmp_path):
  config_file = tmp_path / 'vertex.yaml'
  config_file.write_text(
      f'project: {PROJECT}\nregion: europe-west4\n'
      f'pipeline_root: {PIPELINE_ROOT}\ndata_root: {DATA_ROOT}\n'
      f'image: {IMAGE}\ntrainer_machine_type: ct5lp-hightpu-4t\n'
      'transform_max_num_workers: 200\nextra_beam_args: [--num_workers=4]\n')
  args = _parse(['--output', 'unused.json', '--config', str(config_file),
                 '--region', REGION])
  overrides = {field.name: getattr(args, field.name)
               for field in vertex_settings.setting_fields()}
  settings = validation.load_settings(args.config, overrides)
  assert settings.region == REGION  # The flag wins over the file.
  assert settings.trainer_machine_type == 'ct5lp-hightpu-4t'
  assert worker_pool.worker_pool_spec(settings)['machine_spec'] == {
      'machine_type': 'ct5lp-hightpu-4t', 'accelerator_type': 'TPU_V5_LITEPOD',
      'accelerator_count': 4, 'tpu_topology': '2x2'}
  assert dataflow.component_beam_pipeline_args(settings)[
      'Transform'][-1] == '--max_num_workers=200'
  assert _beam_options(dataflow.dataflow_beam_pipeline_args(settings)
                       )['num_workers'] == 4


def test_help_documents_every_setting():
  parser = argparse.ArgumentParser(prog='maskformer-tfx')
  subparsers = parser.add_subparsers(dest='command', required=True)
  compile_parser = compile_vertex.add_parser(subparsers)
  helps = {option: action.help for action in compile_parser._actions
           for option in action.option_strings}
  for field in vertex_settings.setting_fields():
    for flag in vertex_settings.flag_names(field):
      assert helps.get(flag), f'{field.name} has no documented flag {flag}'
  for flag in ('--params_override', '--config_file', '--config-file'):
    assert helps.get(flag), flag
  for flag in ('--project', '--region', '--pipeline-root', '--data', '--image',
               '--output', '--config', '--submit', '--service-account'):
    assert helps.get(flag), flag


def test_local_path_detection_ignores_gcs_segments():
  paths = ['/tmp', '/work/main']
  assert compiler.find_local_paths(
      '"--temp_location=gs://bucket/root/tmp/dataflow"', paths) == []
  assert compiler.find_local_paths(
      '"schema_file": "/work/main/schemas/raw_schema.pbtxt"', paths) == [
          '/work/main']
  assert compiler.find_local_paths('--temp_location=/tmp/x', paths) == [
      '/tmp']


def test_dockerfile_pins_match_the_lock_file():
  dockerfile = (REPO_ROOT / 'Dockerfile').read_text(encoding='utf-8')
  lock = dict(re.findall(r'^([A-Za-z0-9_.-]+)(?:\[[\w,]+\])?==(\S+)$',
                         (REPO_ROOT / 'requirements.lock').read_text(), re.M))
  args = dict(re.findall(r'^ARG (\w+)=(\S+)$', dockerfile, re.M))
  assert args['BEAM_VERSION'] == lock['apache-beam']
  assert args['TENSORFLOW_TPU_VERSION'] == lock['tensorflow']
  assert args['TENSORFLOW_VERSION'] == lock['tensorflow']
  assert re.search(r'^ENV TF_USE_LEGACY_KERAS=1\b', dockerfile, re.M)
  assert 'pip install --no-deps -r requirements.lock' in dockerfile
