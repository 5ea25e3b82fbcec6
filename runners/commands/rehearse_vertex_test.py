"""Tests of `rehearse-vertex` on input it cannot rehearse: one clear line."""

import argparse
import json

from runners.commands import rehearse_vertex


def _run(argv):
  parser = argparse.ArgumentParser(prog='maskformer-tfx')
  rehearse_vertex.add_parser(parser.add_subparsers(dest='command'))
  args = parser.parse_args(['rehearse-vertex', *argv])
  return args.handler(args)


def test_a_missing_compiled_file_is_named(tmp_path, capsys):
  missing = tmp_path / 'nope.json'
  assert _run(['--compiled', str(missing), '--gcs-root', str(tmp_path)]) == 2
  error = capsys.readouterr().err
  assert error.startswith(f'rehearse-vertex: Cannot read {missing}')
  assert 'Traceback' not in error


def test_a_pipeline_root_that_is_not_on_cloud_storage_is_refused(
    tmp_path, capsys):
  compiled = tmp_path / 'job.json'
  compiled.write_text(json.dumps({
      'runtimeConfig': {'gcsOutputDirectory': '/local/root'},
      'pipelineSpec': {'root': {'dag': {'tasks': {}}}, 'components': {},
                       'deploymentSpec': {'executors': {}}}}))
  assert _run(['--compiled', str(compiled), '--gcs-root',
               str(tmp_path / 'gcs')]) == 2
  error = capsys.readouterr().err
  assert "the pipeline root '/local/root' is not a gs:// location" in error
