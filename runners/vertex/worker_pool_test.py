"""The worker pool spec and the TFMG runtime that follows from it."""

from google.cloud.aiplatform_v1.types import custom_job
import pytest

from runners.vertex import validation
from runners.vertex import worker_pool
from runners.vertex.settings import VertexSettingsError


def test_gpu_option_uses_the_mirrored_strategy(make_settings):
  settings = make_settings(trainer_machine_type='a2-highgpu-2g',
                           accelerator_type='NVIDIA_TESLA_A100')
  validation.validate(settings)
  pool = custom_job.WorkerPoolSpec(**worker_pool.worker_pool_spec(settings))
  assert pool.machine_spec.accelerator_type.name == 'NVIDIA_TESLA_A100'
  assert pool.machine_spec.accelerator_count == 2
  assert not pool.machine_spec.tpu_topology
  assert pool.container_spec.image_uri == settings.image  # No trainer image.
  assert worker_pool.trainer_params_override(settings)['runtime'] == {
      'distribution_strategy': 'mirrored', 'num_gpus': 2,
      'mixed_precision_dtype': 'bfloat16'}


def test_gpus_before_ampere_train_in_float32_and_need_a_count(make_settings):
  settings = make_settings(trainer_machine_type='n1-standard-16',
                           accelerator_type='NVIDIA_TESLA_T4')
  with pytest.raises(VertexSettingsError, match='--accelerator-count is '
                     'required'):
    validation.validate(settings)
  settings.accelerator_count = 2
  validation.validate(settings)
  assert worker_pool.trainer_params_override(settings)['runtime'][
      'mixed_precision_dtype'] == 'float32'


def test_params_override_is_merged_with_the_runtime(make_settings):
  settings = make_settings(
      params_override='task.train_data.global_batch_size=32,'
                      'runtime.mixed_precision_dtype=float32')
  override = worker_pool.trainer_params_override(settings)
  assert override['task'] == {'train_data': {'global_batch_size': 32}}
  assert override['runtime'] == {'distribution_strategy': 'tpu',
                                 'tpu': 'local',
                                 'mixed_precision_dtype': 'float32'}


def test_config_files_come_first_then_the_params_override(tmp_path,
                                                          make_settings):
  first, second = tmp_path / 'a.yaml', tmp_path / 'b.yaml'
  first.write_text('task: {train_data: {global_batch_size: 8, '
                   'is_training: true}}\n')
  second.write_text('task: {train_data: {global_batch_size: 16}}\n'
                    'trainer: {train_steps: 10}\n')
  settings = make_settings(config_files=[str(first), str(second)],
                           params_override='trainer.train_steps=20')
  override = worker_pool.trainer_params_override(settings)
  assert override['task'] == {'train_data': {'global_batch_size': 16,
                                             'is_training': True}}
  assert override['trainer'] == {'train_steps': 20}


def test_a_params_override_file_is_not_read_when_compiling(tmp_path,
                                                           make_settings):
  path = tmp_path / 'override.yaml'
  path.write_text('trainer: {train_steps: 10}\n')
  with pytest.raises(VertexSettingsError, match='file path is not read'):
    worker_pool.trainer_params_override(
        make_settings(params_override=str(path)))
