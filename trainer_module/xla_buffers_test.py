"""Tests for reading XLA's buffer assignment."""

import pytest

from trainer_module import xla_buffers

# Shortened from a real dump (TF 2.16, CPU): two allocations, the "Used
# values" section that repeats the values after the total.
_TEXT = """BufferAssignment:
allocation 0: size 8192, parameter 0, shape |f32[64,32]| at ShapeIndex {}:
 value: <3 arg0.1 @0> (size=8192,offset=0): f32[64,32]{1,0}
allocation 6: size 24576, preallocated-temp:
 value: <4 sine.3 @0> (size=8192,offset=16384): f32[64,32]{1,0}
 value: <5 dot.5 @0> (size=16384,offset=0): f32[64,64]{0,1}
 value: <7 reduce-window @0> (size=16,offset=16384): f32[2,2]{1,0}

Total bytes used: 32788 (32.0KiB)

Used values:
<0 x.11 @0>
 value: <9 ghost.1 @0> (size=99999999,offset=0): f32[99999999]{0}
"""


def test_parse_reads_total_allocations_and_values():
  plan = xla_buffers.parse(_TEXT)
  assert plan.total_bytes == 32788
  assert plan.parameter_bytes() == 8192
  assert [v.name for v in plan.largest(2)] == ['dot.5', 'arg0.1']
  assert len(plan.values) == 4
  assert plan.values[1].kind == 'preallocated-temp'


def test_tpu_padding_follows_the_layout():
  plan = xla_buffers.parse(_TEXT)
  values = {v.name: v for v in plan.values}
  # f32[64,32]{1,0}: minor 32 -> 128, second-minor 64 stays.
  assert xla_buffers.tpu_padded_bytes(values['sine.3']) == 64 * 128 * 4
  # f32[64,64]{0,1}: the minor dimension is dimension 0.
  assert xla_buffers.tpu_padded_bytes(values['dot.5']) == 128 * 64 * 4
  assert xla_buffers.tpu_padded_bytes(values['reduce-window']) == 8 * 128 * 4
  assert xla_buffers.tpu_padded_total(plan, count=1) == (
      32788 + 128 * 64 * 4 - 16384)


def test_text_without_a_total_is_refused(tmp_path):
  path = tmp_path / 'module.buffer-assignment.txt'
  path.write_text('HloModule m\n')
  with pytest.raises(ValueError, match='module.buffer-assignment.txt: not an '
                     'XLA buffer assignment'):
    xla_buffers.read(path)
  assert xla_buffers.find_dumps(tmp_path, 'module') == [path]
  assert xla_buffers.find_dumps(tmp_path, 'other') == []
