"""Tests of the gs:// mapping and the image/Dataflow/TPU substitutions."""

import json
import os
import sys

from runners.vertex_rehearsal import substitutions
from runners.vertex_rehearsal.gcs import GcsMapping
from runners.vertex import settings as vertex_settings


def test_gcs_uris_map_under_the_root_also_inside_json(tmp_path):
  mapping = GcsMapping(str(tmp_path))
  assert mapping.local_path('gs://bucket/a/b') == str(tmp_path / 'bucket/a/b')
  assert mapping.local_path('/already/local') == '/already/local'
  text = json.dumps({'base_directory': 'gs://bucket/pushed',
                     'inner': json.dumps({'dir': 'gs://other/ckpt'})})
  mapped, pairs = mapping.map_text(text)
  assert 'gs://' not in mapped
  inner = json.loads(json.loads(mapped)['inner'])
  assert inner['dir'] == str(tmp_path / 'other/ckpt')
  assert json.loads(mapped)['base_directory'] == str(tmp_path / 'bucket/pushed')
  assert pairs == [('gs://bucket/pushed', str(tmp_path / 'bucket/pushed')),
                   ('gs://other/ckpt', str(tmp_path / 'other/ckpt'))]
  assert mapping.map_value(3) == (3, [])


def test_the_image_python_and_package_dir_become_this_checkout():
  command, notes = substitutions.interpreter(['python', '-m', 'mod'], 'T')
  assert command == [sys.executable, '-m', 'mod']
  assert 'T: image interpreter' in notes[0]
  schema = vertex_settings.IMAGE_SCHEMA_FILE
  local = substitutions.image_paths(schema)
  assert local == os.path.join(substitutions.REPO_ROOT, 'schemas',
                               'raw_schema.pbtxt')
  assert os.path.exists(local)
  assert substitutions.image_paths('/pipelinex/a') == '/pipelinex/a'


def test_dataflow_arguments_become_direct_runner_ones():
  compiled = ['--runner=DataflowRunner', '--project=p', '--region=r',
              '--temp_location=gs://b/tmp', '--machine_type=n2-highmem-16',
              '--max_num_workers=50', '--sdk_container_image=img',
              '--sdk_location=container', '--experiments=use_runner_v2',
              '--service_account_email', 'sa@p.iam.gserviceaccount.com',
              '--save_main_session']
  args, (note,) = substitutions.beam_args(compiled, 'Transform')
  assert args == ['--save_main_session', *substitutions.LOCAL_BEAM_ARGS]
  assert '--runner=DirectRunner' in args
  assert note.startswith('Transform: Dataflow -> Beam DirectRunner: dropped '
                         '--runner=DataflowRunner --project=p')
  assert 'sa@p.iam.gserviceaccount.com' in note
  assert substitutions.beam_args([], 'T') == ([], [])


def test_entrypoint_flags_are_told_from_beam_arguments():
  entrypoint, beam = substitutions.split_entrypoint_args(
      ['--executor_class_path', 'a.B', '--json_serialized_invocation_args',
       '{}', '--runner=DataflowRunner'])
  assert entrypoint == ['--executor_class_path', 'a.B',
                        '--json_serialized_invocation_args', '{}']
  assert beam == ['--runner=DataflowRunner']


def test_the_tpu_runtime_becomes_the_cpu_one():
  override = json.dumps({'runtime': {'distribution_strategy': 'tpu',
                                     'tpu': 'local',
                                     'mixed_precision_dtype': 'bfloat16'},
                         'task': {'x': 1}})
  exec_properties = json.dumps({'custom_config': json.dumps(
      {'params_override': override, 'experiment': 'maskformer_tiny'})})
  changed, (note,) = substitutions.trainer_exec_properties(exec_properties,
                                                           'pool 0')
  config = json.loads(json.loads(changed)['custom_config'])
  assert config['experiment'] == 'maskformer_tiny'
  new_override = json.loads(config['params_override'])
  assert new_override['runtime'] == substitutions.CPU_RUNTIME
  assert new_override['task'] == {'x': 1}
  assert '"tpu": "local"' in note and 'one_device' in note
