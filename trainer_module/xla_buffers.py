"""Reads XLA's buffer assignment: the memory plan of a compiled function.

With `XLA_FLAGS=--xla_dump_to=DIR`, compiling a `tf.function(jit_compile=True)`
(e.g. `fn.experimental_get_compiler_ir(*args)(stage='optimized_hlo')`, which
compiles without running) writes `*buffer-assignment.txt` files to DIR. Their
format (XLA's `BufferAssignment::ToString`):

  allocation 6: size 24576, preallocated-temp:
   value: <4 sine.3 @0> (size=8192,offset=16384): f32[64,32]{1,0}
  ...
  Total bytes used: 32788 (32.0KiB)

One `allocation` per buffer of the executable (parameters, constants, the
output, one preallocated temporary arena whose values share space when they
are not alive at the same time) and one `value:` line per HLO value placed in
it. `tpu_padded_bytes` estimates a value's size with TPU tiling (minor
dimension padded to 128, second-minor to 8) and `tpu_padded_total` the total
with the largest values so padded; CPU sizes are lower bounds of a TPU's.

Standard library only (no TensorFlow): used by `benchmarks/bench_xla_memory.py`
and the criterion's buffer test.
"""

import dataclasses
import math
import pathlib
import re
from typing import List, Optional, Tuple

_BYTES_PER_ELEMENT = {
    'pred': 1, 's8': 1, 'u8': 1, 's16': 2, 'u16': 2, 'f16': 2, 'bf16': 2,
    's32': 4, 'u32': 4, 'f32': 4, 's64': 8, 'u64': 8, 'f64': 8, 'c64': 8,
    'c128': 16,
}
_ALLOCATION = re.compile(r'^allocation (\d+): size (\d+)(.*)$')
_VALUE = re.compile(
    r'^ value: <\d+ (\S+) @[\d{}, ]+> \(size=(\d+),offset=(\d+)\): (.*)$')
_ARRAY = re.compile(r'^([a-z]+\d*)\[([\d,]*)\](?:\{([\d,]*)[^}]*\})?$')
_TOTAL = re.compile(r'^Total bytes used: (\d+)')
FILE_SUFFIX = 'buffer-assignment.txt'


@dataclasses.dataclass(frozen=True)
class Value:
  """One HLO value of an allocation."""
  name: str
  size: int
  shape: str
  allocation: int
  kind: str  # The allocation's kind, e.g. 'parameter 3', 'preallocated-temp'.

  def dims(self) -> Optional[Tuple[str, List[int], List[int]]]:
    """(element type, dimensions, minor-to-major layout) of an array."""
    match = _ARRAY.match(self.shape)
    if not match:
      return None
    dims = [int(d) for d in match.group(2).split(',') if d]
    layout = ([int(d) for d in match.group(3).split(',') if d]
              if match.group(3) is not None else [])
    if len(layout) != len(dims):
      layout = list(range(len(dims) - 1, -1, -1))
    return match.group(1), dims, layout


@dataclasses.dataclass(frozen=True)
class BufferAssignment:
  total_bytes: int
  allocations: List[Tuple[int, int, str]]  # (index, size, kind)
  values: List[Value]

  def parameter_bytes(self) -> int:
    """Bytes of the entry parameters (weights, optimizer slots, inputs)."""
    return sum(size for _, size, kind in self.allocations
               if kind.startswith('parameter'))

  def largest(self, count: int) -> List[Value]:
    return sorted(self.values, key=lambda v: v.size, reverse=True)[:count]


def parse(text: str) -> BufferAssignment:
  """Parses the text of a `*buffer-assignment.txt` file."""
  total = None
  allocations = []
  values = []
  for line in text.splitlines():
    match = _ALLOCATION.match(line)
    if match:
      kind = match.group(3).strip(' :,')
      allocations.append((int(match.group(1)), int(match.group(2)), kind))
      continue
    match = _VALUE.match(line)
    if match and allocations:
      index, _, kind = allocations[-1]
      values.append(Value(match.group(1), int(match.group(2)),
                          match.group(4).strip(), index, kind))
      continue
    match = _TOTAL.match(line)
    if match:
      total = int(match.group(1))
      break  # The "Used values" section that follows repeats the values.
  if total is None:
    raise ValueError('not an XLA buffer assignment: no "Total bytes used" '
                     'line')
  return BufferAssignment(total, allocations, values)


def read(path: pathlib.Path) -> BufferAssignment:
  try:
    return parse(path.read_text())
  except ValueError as error:
    raise ValueError(f'{path}: {error}') from None


def find_dumps(dump_dir: pathlib.Path, name_part: str = ''
              ) -> List[pathlib.Path]:
  """The buffer assignments in `dump_dir` whose file name has `name_part`."""
  return sorted(path for path in dump_dir.glob(f'*{FILE_SUFFIX}')
                if name_part in path.name)


def tpu_padded_bytes(value: Value) -> int:
  """`value.size` with TPU tiling: minor dim to 128, second-minor to 8."""
  parsed = value.dims()
  if parsed is None or not parsed[1]:
    return value.size
  element_type, dims, layout = parsed
  padded = list(dims)
  padded[layout[0]] = 128 * math.ceil(dims[layout[0]] / 128)
  if len(layout) > 1:
    padded[layout[1]] = 8 * math.ceil(dims[layout[1]] / 8)
  return math.prod(padded) * _BYTES_PER_ELEMENT.get(element_type, 4)


def tpu_padded_total(assignment: BufferAssignment, count: int = 8) -> int:
  """Estimate of `total_bytes` with TPU tiling of the `count` largest values.

  The total plus the padding of the largest values in the CPU layout. A
  TPU compiler chooses its own layouts and tiles every buffer; padding every
  small value of a CPU layout (e.g. a minor axis of 3 colour channels to
  128) would overstate it, and values of the temporary arena share space, so
  this stays an estimate.
  """
  return assignment.total_bytes + sum(
      tpu_padded_bytes(value) - value.size
      for value in assignment.largest(count))
