"""The accelerators of the Vertex AI Training worker pool.

GPU types are the NVIDIA members of Vertex AI's own enum,
`google.cloud.aiplatform_v1.types.AcceleratorType` (read when first needed:
importing `google.cloud.aiplatform_v1` takes seconds). The enum names TPU
generations (`TPU_V5_LITEPOD`, ...) but not the machine types that carry
them, their chip counts or topologies, nor which GPUs a machine family
carries: those facts are stated here, from the Vertex AI Training docs
("Configure compute resources for custom training", TPU VM machine types).
"""

import dataclasses
import functools
import re
from typing import List, Mapping, Optional, Tuple


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  """A single-host TPU VM slice that Vertex AI Training offers."""
  machine_type: str
  accelerator_type: str
  chips: int
  topology: str


# Single-host TPU VM slices (one worker, all chips local, addressed by TF as
# the 'local' TPU). Multi-host slices need multi-worker TPU set-up that the
# trainer does not do. Not in the enum: machine type, chips, topology.
TPU_SLICES: Mapping[str, TpuSlice] = {
    s.machine_type: s for s in (
        TpuSlice('ct5lp-hightpu-1t', 'TPU_V5_LITEPOD', 1, '1x1'),
        TpuSlice('ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', 4, '2x2'),
        TpuSlice('ct5lp-hightpu-8t', 'TPU_V5_LITEPOD', 8, '2x4'),
        TpuSlice('ct4p-hightpu-4t', 'TPU_V4_POD', 4, '2x2x1'),
    )
}
TPU_ACCELERATOR_TYPES = tuple(sorted({s.accelerator_type
                                      for s in TPU_SLICES.values()}))

# The machine families that carry GPUs, and which (not in the enum). Machine
# types of other families are passed through unchecked.
_N1_GPUS = ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
            'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_K80')
GPU_MACHINE_FAMILIES: Mapping[str, Tuple[str, ...]] = {
    'a2-highgpu': ('NVIDIA_TESLA_A100',),
    'a2-megagpu': ('NVIDIA_TESLA_A100',),
    'a2-ultragpu': ('NVIDIA_A100_80GB',),
    'a3-highgpu': ('NVIDIA_H100_80GB',),
    'a3-megagpu': ('NVIDIA_H100_MEGA_80GB',),
    'a3-ultragpu': ('NVIDIA_H200_141GB',),
    'g2-standard': ('NVIDIA_L4',),
    'n1-standard': _N1_GPUS,
    'n1-highmem': _N1_GPUS,
    'n1-highcpu': _N1_GPUS,
}
# GPUs without fast bfloat16 (before Ampere): they train in float32 unless the
# settings say otherwise.
GPUS_WITHOUT_BFLOAT16 = ('NVIDIA_TESLA_K80', 'NVIDIA_TESLA_P100',
                         'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P4',
                         'NVIDIA_TESLA_T4')

MACHINE_TYPE_RE = re.compile(
    r'[a-z][a-z0-9]*-(standard|highmem|highcpu|ultramem|megamem|hightpu|'
    r'highgpu|megagpu|ultragpu)-[0-9]+[a-z]*|[a-z0-9]+-custom-[0-9]+-[0-9]+(-ext)?'
    r'|cloud-tpu')
# Machine types with built-in GPUs: the count is the number before 'g'.
_BUILT_IN_GPUS_RE = re.compile(r'[a-z0-9]+-[a-z]+gpu-([0-9]+)g')


@functools.lru_cache(maxsize=None)
def vertex_accelerator_types() -> Tuple[str, ...]:
  """Every member of Vertex AI's AcceleratorType enum (but UNSPECIFIED)."""
  from google.cloud.aiplatform_v1.types import AcceleratorType
  return tuple(member.name for member in AcceleratorType
               if member.value != AcceleratorType.ACCELERATOR_TYPE_UNSPECIFIED)


def gpu_accelerator_types() -> Tuple[str, ...]:
  """The NVIDIA accelerator types of Vertex AI."""
  return tuple(name for name in vertex_accelerator_types()
               if name.startswith('NVIDIA_'))


def is_tpu(accelerator_type: str) -> bool:
  return accelerator_type in TPU_ACCELERATOR_TYPES


def accelerator_count(machine_type: str, accelerator_type: str,
                      count: Optional[int]) -> int:
  """The given count, or the TPU slice's chips, or N of a `-Ng` machine."""
  if count is not None:
    return count
  if is_tpu(accelerator_type):
    return TPU_SLICES[machine_type].chips
  return int(_BUILT_IN_GPUS_RE.fullmatch(machine_type).group(1))


def _tpu_problems(machine: str, accelerator: str, count: Optional[int],
                  topology: Optional[str]) -> List[str]:
  tpu_slice = TPU_SLICES.get(machine)
  if tpu_slice is None or tpu_slice.accelerator_type != accelerator:
    choices = ', '.join(s.machine_type for s in TPU_SLICES.values()
                        if s.accelerator_type == accelerator)
    return [f'--trainer-machine-type {machine!r} is not a single-host TPU VM '
            f'with {accelerator}; use one of: {choices}.']
  problems = []
  if count is not None and count != tpu_slice.chips:
    problems.append(f'--accelerator-count {count} does not match {machine}, '
                    f'which has {tpu_slice.chips} TPU chips.')
  if topology is not None and topology != tpu_slice.topology:
    problems.append(f'--tpu-topology {topology!r} does not match {machine}, '
                    f'whose topology is {tpu_slice.topology!r}.')
  return problems


def worker_pool_problems(machine: str, accelerator: str, count: Optional[int],
                         topology: Optional[str]) -> List[str]:
  """A known accelerator on a machine type that carries it, in that number."""
  if is_tpu(accelerator):
    return _tpu_problems(machine, accelerator, count, topology)
  if accelerator.startswith('TPU_'):
    return [f'Unknown or unsupported TPU type --accelerator-type '
            f'{accelerator!r}; supported: {", ".join(TPU_ACCELERATOR_TYPES)}.']
  gpus = gpu_accelerator_types()
  if accelerator not in gpus:
    return [f'Unknown --accelerator-type {accelerator!r}; use a TPU type '
            f'({", ".join(TPU_ACCELERATOR_TYPES)}) or a GPU type '
            f'({", ".join(gpus)}).']
  problems = []
  if topology is not None:
    problems.append('--tpu-topology applies to TPU accelerators only.')
  family = machine.rsplit('-', 1)[0]
  if machine in TPU_SLICES or not MACHINE_TYPE_RE.fullmatch(machine):
    problems.append(f'--trainer-machine-type {machine!r} is not a GPU '
                    f'machine type for {accelerator}.')
  elif family in GPU_MACHINE_FAMILIES and (
      accelerator not in GPU_MACHINE_FAMILIES[family]):
    problems.append(f'{machine} machines carry '
                    f'{" or ".join(GPU_MACHINE_FAMILIES[family])}, not '
                    f'{accelerator}.')
  built_in = _BUILT_IN_GPUS_RE.fullmatch(machine)
  if built_in and count is not None and count != int(built_in.group(1)):
    problems.append(f'--accelerator-count {count} does not match {machine}, '
                    f'which has {built_in.group(1)} GPUs.')
  if not built_in and count is None:
    problems.append(f'--accelerator-count is required for {machine}.')
  return problems
