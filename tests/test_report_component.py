"""The ReviewReport component: it compiles for Vertex AI Pipelines, every
local run writes its page as an artifact, and its executor builds the page
from input artifacts alone (no ML Metadata, no pipeline root)."""

import json
import pathlib
import re
import time
from typing import Any, Dict

from tfx import v1 as tfx
from tfx.utils import import_utils
import yaml

from tests import pipeline_helpers
from tfx_pipeline import pipeline as pipeline_lib
from tfx_pipeline.config import PipelineConfig
from tfx_pipeline.report import component
from tfx_pipeline.report import local_root

IMAGE = 'us-central1-docker.pkg.dev/maskformer-proj/ml/maskformer-tfx:1.0'
REPORT_TASK = 'ReviewReport'


def _compile(tmp_path: pathlib.Path, **config: Any) -> Dict[str, Any]:
  """The pipeline of `config` compiled for Vertex, as parsed JSON."""
  pipeline = pipeline_lib.create_pipeline(PipelineConfig(
      pipeline_root='gs://maskformer-bucket/pipelines/maskformer',
      data_root='gs://maskformer-bucket/coco/tfrecords', **config))
  runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
      config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
          default_image=IMAGE),
      output_dir=str(tmp_path), output_filename='pipeline.json')
  runner.run(pipeline)
  return json.loads((tmp_path / 'pipeline.json').read_text())


def _report_task(compiled: Dict[str, Any]):
  """(task, its component, its executor) of ReviewReport."""
  spec = compiled['pipelineSpec']
  task = spec['root']['dag']['tasks'][REPORT_TASK]
  component_def = spec['components'][task['componentRef']['name']]
  executor = spec['deploymentSpec']['executors'][
      component_def['executorLabel']]
  return task, component_def, executor


def test_report_component_compiles_for_vertex_last_in_the_pipeline(tmp_path):
  task, component_def, executor = _report_task(_compile(tmp_path))
  inputs = task['inputs']['artifacts']
  assert set(inputs) == set(component.ReviewReportSpec.INPUTS)
  producers = {name: value['taskOutputArtifact']['producerTask']
               for name, value in inputs.items()}
  assert producers['pushed_model'] == 'Pusher'
  assert producers['blessing'] == producers['evaluation'] == 'Evaluator'
  assert producers['model'] == producers['model_run'] == 'Trainer'
  assert producers['transform_graph'] == 'Transform'
  assert producers['transformed_examples'] == 'Transform'
  assert 'DataValidationGate' in task['dependentTasks']
  container = executor['container']
  assert container['image'] == IMAGE
  args = ' '.join(container['args'])
  # The container runs the component's own executor.
  assert '--executor_class_path' in args
  assert 'tfx_pipeline.report.component.Executor' in args
  assert task['inputs']['parameters']['pipeline_name']
  # The container finds the output's artifact class from its schema title
  # (TFX's Vertex entrypoint imports the title as a class path).
  schema = yaml.safe_load(component_def['outputDefinitions']['artifacts'][
      'report']['artifactType']['instanceSchema'])
  assert import_utils.import_class_by_path(schema['title']) is (
      component.ReviewReportPage)


def test_data_validation_only_pipeline_reports_its_data_half(tmp_path):
  task, _, _ = _report_task(_compile(tmp_path, data_validation_only=True))
  assert set(task['inputs']['artifacts']) == {'statistics', 'schema',
                                              'anomalies', 'examples'}
  assert 'DataValidationGate' in task['dependentTasks']


def test_every_local_run_writes_its_page_as_an_artifact(trained_run,
                                                       tmp_path):
  pipeline_root, result = trained_run
  artifacts = pipeline_helpers.latest_execution_artifacts(pipeline_root,
                                                          REPORT_TASK)
  page = pathlib.Path(artifacts['output:report'][0]) / local_root.REPORT_FILE
  assert page.is_file()
  # `maskformer-tfx run` points at the artifact's page.
  assert f'Review report: {page}' in result.stdout
  text = page.read_text(encoding='utf-8')
  evaluation = artifacts['input:evaluation'][0]
  assert evaluation in text
  assert 'gate-decision' in text and 'data-metric="pq"' in text
  # Built from the inputs: every section has content, none is missing.
  assert 'not available' not in text
  assert text.count('class="example"') >= 3 * 6  # image, truth, prediction.
  # `maskformer-tfx report PIPELINE_ROOT` builds the same sections from ML
  # Metadata (which also knows the run id and the Trainer's arguments).
  from_mlmd = pathlib.Path(local_root.write_report(
      str(pipeline_root), output=str(tmp_path / 'page.html'))).read_text(
          encoding='utf-8')
  assert 'not available' not in from_mlmd
  for marker in (evaluation, 'gate-decision', 'data-metric="pq"'):
    assert marker in from_mlmd
  assert 'ReviewReport' in from_mlmd  # Its artifact is listed.


def test_executor_builds_the_page_from_input_artifacts_only(gate_stopped_run,
                                                           tmp_path):
  """The data half's artifacts of a real run, given to the executor with no
  ML Metadata and no pipeline root around (as on Vertex): its Data section
  is the one `maskformer-tfx report` builds from ML Metadata."""
  pipeline_root, _ = gate_stopped_run
  uris = {}
  for node, key in (('StatisticsGen', 'statistics'),
                    ('ImportSchemaGen', 'schema'),
                    ('ExampleValidator', 'anomalies')):
    uris[key] = pipeline_helpers.latest_execution_artifacts(
        pipeline_root, node)[f'output:{key}'][0]
  inputs = {}
  for key, artifact_type in (
      ('statistics', tfx.types.standard_artifacts.ExampleStatistics),
      ('schema', tfx.types.standard_artifacts.Schema),
      ('anomalies', tfx.types.standard_artifacts.ExampleAnomalies)):
    artifact = artifact_type()
    artifact.uri = uris[key]
    if key != 'schema':
      artifact.split_names = '["train", "eval"]'
    inputs[key] = [artifact]
  output = component.ReviewReportPage()
  output.uri = str(tmp_path / 'report')
  started = time.monotonic()
  component.Executor().Do(inputs, {'report': [output]},
                          {'pipeline_name': 'maskformer-tfx',
                           'num_examples': 2})
  seconds = time.monotonic() - started
  text = (tmp_path / 'report' / local_root.REPORT_FILE).read_text(
      encoding='utf-8')
  assert '<title>maskformer-tfx run</title>' in text
  assert 'the input artifacts of the ReviewReport component' in text
  assert "Expected data of type: INT but got FLOAT" in text
  assert 'train (6 examples)' in text and 'eval (3 examples)' in text
  for uri in uris.values():
    assert uri in text
  # The model's sections say why they are empty.
  assert re.search(r'not available: Evaluator is not part of this run', text)
  assert 'metadata.sqlite' not in text
  print(f'ReviewReport executor, data half: {seconds:.1f} s')
