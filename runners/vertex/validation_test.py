"""Settings are checked as a whole, from YAML as from flags."""

import pytest

from runners.vertex import validation
from runners.vertex.settings import VertexSettings
from runners.vertex.settings import VertexSettingsError


def test_every_problem_is_named_at_once():
  with pytest.raises(VertexSettingsError) as raised:
    validation.validate(VertexSettings(data_root='/data'))
  for flag in ('--project', '--region', '--pipeline-root', '--data',
               '--image'):
    assert flag in str(raised.value)


def test_yaml_with_an_unknown_setting_is_rejected(tmp_path):
  config_file = tmp_path / 'vertex.yaml'
  config_file.write_text('project: maskformer-proj\ntpu_type: v5e\n')
  with pytest.raises(VertexSettingsError, match='Unknown settings: tpu_type'):
    validation.load_settings(str(config_file))


def test_counts_from_yaml_are_checked(tmp_path, make_settings):
  """Counts may come from the YAML file, so no argparse type checks them."""
  with pytest.raises(VertexSettingsError,
                     match='--transform-max-num-workers must be at least 1'):
    validation.validate(make_settings(transform_max_num_workers=0))
  with pytest.raises(VertexSettingsError, match='train_steps .* must be of '
                     'type int'):
    validation.validate(make_settings(train_steps='many'))


def test_unreadable_config_file_is_named(tmp_path, make_settings):
  missing = tmp_path / 'missing.yaml'
  with pytest.raises(VertexSettingsError) as raised:
    validation.validate(make_settings(config_files=[str(missing)]))
  assert f'--config_file {missing}' in str(raised.value)
