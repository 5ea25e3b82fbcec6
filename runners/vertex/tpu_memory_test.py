"""The pre-flight memory check of compile-vertex, with the checked-in table."""

import argparse

import pytest

from runners.commands import compile_vertex
from runners.vertex import compiler
from runners.vertex import accelerators
from runners.vertex import tpu_memory
from runners.vertex.settings import VertexSettingsError
from tfx_pipeline import config as tfx_config


@pytest.mark.parametrize('experiment', sorted(tpu_memory.STEP_MEMORY))
@pytest.mark.parametrize('accelerator', sorted(tpu_memory.CHIP_MEMORY_BYTES))
def test_largest_batch_is_the_last_that_fits(experiment, accelerator):
  cost = tpu_memory.STEP_MEMORY[experiment]
  assert cost.fixed_bytes > 0 and cost.per_image_bytes > 0
  fits = tpu_memory.largest_batch_that_fits(experiment, accelerator)
  usable = tpu_memory.usable_bytes(accelerator)
  assert cost.estimate(fits) <= usable < cost.estimate(fits + 1)
  assert usable == pytest.approx(
      0.85 * tpu_memory.CHIP_MEMORY_BYTES[accelerator], abs=1)


def test_refusal_names_experiment_slice_batch_estimate_and_chip_memory():
  experiment = 'maskformer_coco_panoptic'
  cost = tpu_memory.STEP_MEMORY[experiment]
  fits = tpu_memory.largest_batch_that_fits(experiment, 'TPU_V5_LITEPOD')
  per_chip = fits + 1
  message = tpu_memory.memory_problem(
      experiment, 'ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', 4, 4 * per_chip)
  assert message is not None
  estimate = cost.estimate(per_chip) / tpu_memory.GIB
  for part in (experiment, 'ct5lp-hightpu-4t', '4 x TPU_V5_LITEPOD',
               f'{per_chip} images per chip', f'{estimate:.1f} GiB',
               'a chip has 16 GiB', f'At most {fits} images per chip',
               f'global_batch_size to {4 * fits}', '--skip-memory-check'):
    assert part in message
  assert tpu_memory.memory_problem(
      experiment, 'ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', 4, 4 * fits) is None


def test_uneven_batches_count_the_fullest_chip():
  experiment = 'maskformer_coco_panoptic'
  fits = tpu_memory.largest_batch_that_fits(experiment, 'TPU_V5_LITEPOD')
  assert tpu_memory.memory_problem(
      experiment, 'ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', 4,
      4 * fits + 1) is not None


def test_unmeasured_experiments_and_gpus_are_not_checked():
  assert tpu_memory.memory_problem('maskformer_tiny', 'ct5lp-hightpu-1t',
                                   'TPU_V5_LITEPOD', 1, 10_000) is None
  assert tpu_memory.memory_problem('maskformer_coco_panoptic',
                                   'a2-highgpu-1g', 'NVIDIA_TESLA_A100', 1,
                                   10_000) is None


@pytest.mark.parametrize('experiment', sorted(tpu_memory.STEP_MEMORY))
def test_shipped_defaults_fit_the_default_slice(experiment, make_settings):
  """The experiment's global batch on compile-vertex's default TPU slice."""
  settings = make_settings(experiment=experiment)
  chips = accelerators.TPU_SLICES[settings.trainer_machine_type].chips
  batch = tfx_config.experiment_params(
      experiment).task.train_data.global_batch_size
  assert batch % chips == 0
  assert tpu_memory.memory_problem(
      experiment, settings.trainer_machine_type, settings.accelerator_type,
      chips, batch) is None
  compiler.memory_check(settings)


def test_memory_check_refuses_or_warns_with_skip(make_settings, capsys):
  settings = make_settings(
      experiment='maskformer_coco_panoptic',
      trainer_machine_type='ct5lp-hightpu-1t',
      params_override='task.train_data.global_batch_size=64')
  with pytest.raises(VertexSettingsError) as raised:
    compiler.memory_check(settings)
  message = str(raised.value)
  assert 'does not fit the TPU' in message
  assert '64 images per chip (global batch 64)' in message
  compiler.memory_check(settings, skip=True)
  warning = capsys.readouterr().err
  assert 'warning: --skip-memory-check' in warning
  assert '64 images per chip (global batch 64)' in warning


def test_compile_vertex_refuses_before_compiling(tmp_path, capsys):
  parser = argparse.ArgumentParser(prog='maskformer-tfx')
  compile_vertex.add_parser(
      parser.add_subparsers(dest='command', required=True))
  output = tmp_path / 'pipeline.json'
  args = parser.parse_args([
      'compile-vertex', '--output', str(output),
      '--project', 'maskformer-proj', '--region', 'us-central1',
      '--pipeline-root', 'gs://maskformer-bucket/pipelines/maskformer',
      '--data', 'gs://maskformer-bucket/coco/tfrecords',
      '--image', 'us-central1-docker.pkg.dev/maskformer-proj/ml/m:1.0',
      '--experiment', 'maskformer_coco_panoptic',
      '--trainer-machine-type', 'ct5lp-hightpu-1t',
      '--params-override', 'task.train_data.global_batch_size=64'])
  assert not args.skip_memory_check
  assert compile_vertex.handle(args) == 2
  error = capsys.readouterr().err
  assert error.startswith('compile-vertex: The train step does not fit the '
                          'TPU: maskformer_coco_panoptic on ct5lp-hightpu-1t')
  assert not output.exists()
