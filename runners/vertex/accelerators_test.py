"""Accelerator types are Vertex AI's own enum members."""

from google.cloud.aiplatform_v1.types import AcceleratorType

from runners.vertex import accelerators


def test_gpu_types_are_the_enums_nvidia_members():
  nvidia = [member.name for member in AcceleratorType
            if member.name.startswith('NVIDIA_')]
  assert list(accelerators.gpu_accelerator_types()) == nvidia
  assert 'NVIDIA_H100_80GB' in nvidia


def test_stated_facts_name_only_enum_members():
  names = set(accelerators.vertex_accelerator_types())
  assert 'ACCELERATOR_TYPE_UNSPECIFIED' not in names
  assert set(accelerators.TPU_ACCELERATOR_TYPES) <= names
  for gpus in accelerators.GPU_MACHINE_FAMILIES.values():
    assert set(gpus) <= names
  assert set(accelerators.GPUS_WITHOUT_BFLOAT16) <= names


def test_worker_pool_problems():
  assert accelerators.worker_pool_problems(
      'ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', None, None) == []
  assert accelerators.worker_pool_problems(
      'a3-highgpu-8g', 'NVIDIA_H100_80GB', 8, None) == []
  assert 'not a single-host TPU VM' in accelerators.worker_pool_problems(
      'n1-standard-8', 'TPU_V5_LITEPOD', None, None)[0]
  assert 'Unknown --accelerator-type' in accelerators.worker_pool_problems(
      'a2-highgpu-1g', 'NVIDIA_TESLA_Z9', None, None)[0]
  assert 'carry NVIDIA_TESLA_A100, not NVIDIA_L4' in (
      accelerators.worker_pool_problems('a2-highgpu-1g', 'NVIDIA_L4', None,
                                        None)[0])
  assert accelerators.accelerator_count('a2-highgpu-4g', 'NVIDIA_TESLA_A100',
                                        None) == 4
  assert accelerators.accelerator_count('ct5lp-hightpu-8t', 'TPU_V5_LITEPOD',
                                        None) == 8
