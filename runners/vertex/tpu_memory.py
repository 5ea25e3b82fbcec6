"""Per-chip memory of the Trainer's step on a TPU: compile-vertex's pre-flight.

A TPU slice trains with one replica per chip, so each chip holds the step of
global batch / chips images. The step's memory is linear in those images:
fixed (weights, optimizer slots, per-step buffers that do not depend on the
batch) + per-replica batch × per image. Both figures come from XLA's own
memory plan of the whole train step (`benchmarks/bench_xla_memory.py`:
buffer assignment of the step compiled at several per-replica batches, with
TPU tiling applied to every buffer, least-squares line) and are checked in
below, so that compile-vertex needs no XLA compile; docs/training_on_tpu.md
has the measurements. A configuration fits when its estimate leaves
`HEADROOM` of the chip's memory free (TPU layouts, fragmentation and the
runtime's own buffers are not all in a CPU compile's plan).
"""

import dataclasses
import math
from typing import Mapping, Optional

GIB = 2**30
HEADROOM = 0.15
# High-bandwidth memory per chip (Cloud TPU docs, "TPU versions").
CHIP_MEMORY_BYTES: Mapping[str, int] = {
    'TPU_V5_LITEPOD': 16 * GIB,  # v5e
    'TPU_V4_POD': 32 * GIB,  # v4
}


@dataclasses.dataclass(frozen=True)
class StepMemory:
  """Bytes per replica of one train step: fixed + per image × batch."""
  fixed_bytes: int
  per_image_bytes: int

  def estimate(self, per_replica_batch: int) -> int:
    return self.fixed_bytes + per_replica_batch * self.per_image_bytes


# bench_xla_memory.py's `tpu_padded_fit` of each experiment (its defaults:
# the experiment's mixed-precision policy, bfloat16; 15 segments per image).
# See docs/training_on_tpu.md for the compiles behind each line.
STEP_MEMORY: Mapping[str, StepMemory] = {
    # S = 640: compiled at 1 and 2 images per replica (1.73 and 2.94 GiB).
    'maskformer_coco_panoptic': StepMemory(
        fixed_bytes=554_861_034, per_image_bytes=1_300_755_777),
    # S = 1344: compiled at 1 and 2 images per replica (6.20 and 11.86 GiB).
    'maskformer_coco_panoptic_1344': StepMemory(
        fixed_bytes=578_300_842, per_image_bytes=6_078_085_825),
}


def usable_bytes(accelerator_type: str) -> int:
  return int(CHIP_MEMORY_BYTES[accelerator_type] * (1.0 - HEADROOM))


def largest_batch_that_fits(experiment: str, accelerator_type: str
                           ) -> Optional[int]:
  """The most images per chip that fit (None: no measured cost)."""
  cost = STEP_MEMORY.get(experiment)
  if cost is None or accelerator_type not in CHIP_MEMORY_BYTES:
    return None
  return max(0, (usable_bytes(accelerator_type) - cost.fixed_bytes)
             // cost.per_image_bytes)


def memory_problem(experiment: str, machine_type: str, accelerator_type: str,
                   chips: int, global_batch_size: int) -> Optional[str]:
  """Why the step does not fit a chip of the slice, or None.

  None also when there is nothing to check against: a GPU, or an experiment
  without a measured cost (e.g. `maskformer_tiny`).
  """
  cost = STEP_MEMORY.get(experiment)
  if cost is None or accelerator_type not in CHIP_MEMORY_BYTES:
    return None
  per_replica = math.ceil(global_batch_size / chips)
  estimate = cost.estimate(per_replica)
  usable = usable_bytes(accelerator_type)
  if estimate <= usable:
    return None
  fits = largest_batch_that_fits(experiment, accelerator_type)
  return (
      f'{experiment} on {machine_type} ({chips} x {accelerator_type}): '
      f'{per_replica} images per chip (global batch {global_batch_size}) '
      f'need an estimated {estimate / GIB:.1f} GiB per chip '
      f'({cost.fixed_bytes / GIB:.2f} GiB + {per_replica} x '
      f'{cost.per_image_bytes / GIB:.2f} GiB, XLA\'s memory plan of the '
      f'train step with TPU tiling); a chip has '
      f'{CHIP_MEMORY_BYTES[accelerator_type] / GIB:.0f} GiB, '
      f'{usable / GIB:.1f} GiB with {HEADROOM:.0%} headroom. At most {fits} '
      f'images per chip fit: lower task.train_data.global_batch_size to '
      f'{fits * chips} or less (scaling the learning rate linearly), use a '
      'slice with more chips, or pass --skip-memory-check to compile anyway.')
