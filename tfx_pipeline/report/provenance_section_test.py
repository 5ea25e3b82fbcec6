"""The Transform in the page's component status line and its artifacts in
Provenance, for a page built from the ReviewReport component's inputs."""

from tfx import v1 as tfx

from tfx_pipeline.report import page
from tfx_pipeline.report import provenance_section
from tfx_pipeline.report import run_record


def _artifact(artifact_type, uri):
  artifact = artifact_type()
  artifact.uri = uri
  return artifact


def test_transform_outputs_are_in_the_status_line_and_provenance(tmp_path):
  standard = tfx.types.standard_artifacts
  graph_uri = str(tmp_path / 'Transform' / 'transform_graph' / '7')
  examples_uri = str(tmp_path / 'Transform' / 'transformed_examples' / '7')
  run = run_record.from_artifacts(
      {'transform_graph': _artifact(standard.TransformGraph, graph_uri),
       'transformed_examples': _artifact(standard.Examples, examples_uri),
       'model': None},
      pipeline_name='maskformer-tfx', run_id='run-1')
  assert run.ordered_node_ids() == ['Transform']
  html = page.build_report_html(run, num_examples=1)
  assert '<li class="good">Transform: complete</li>' in html
  rows = provenance_section._artifacts_html(run)
  assert (f'<td>Transform</td><td>transform_graph (out)</td>'
          f'<td>TransformGraph</td><td>{graph_uri}</td>') in rows
  assert (f'<td>Transform</td><td>transformed_examples (out)</td>'
          f'<td>Examples</td><td>{examples_uri}</td>') in rows


def test_a_run_without_transform_outputs_has_no_transform():
  run = run_record.from_artifacts({}, pipeline_name='p', run_id='')
  assert 'Transform' not in run.ordered_node_ids()
