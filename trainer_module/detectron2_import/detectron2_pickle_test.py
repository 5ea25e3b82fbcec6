"""`load_detectron2_pickle` builds numpy arrays only: code in a `.pkl` never runs."""

import collections
import pickle

import numpy as np
import pytest

from trainer_module.detectron2_import import detectron2_pickle
from trainer_module.detectron2_import.detectron2_pickle import CheckpointError


class _WritesFile:
  """Unpickles to a call of `builtins.exec` that writes `path`."""

  def __init__(self, path):
    self.path = str(path)

  def __reduce__(self):
    return (exec, (f'open({self.path!r}, "w").write("ran")',))


def _poisoned_checkpoint(marker) -> bytes:
  """A checkpoint-shaped pickle with one entry that writes `marker`."""
  return pickle.dumps({
      'model': {'backbone.stem.conv1.weight': np.ones([4, 3, 1, 1],
                                                      np.float32),
                'backbone.stem.conv1.norm.bias': _WritesFile(marker)},
      '__author__': 'mirror'})


def test_poisoned_checkpoint_is_refused_before_its_code_runs(tmp_path):
  # The poison is real: the standard unpickler runs it.
  control = tmp_path / 'control.txt'
  pickle.loads(_poisoned_checkpoint(control))
  assert control.read_text() == 'ran'

  marker = tmp_path / 'written_by_checkpoint.txt'
  path = tmp_path / 'model_final.pkl'
  path.write_bytes(_poisoned_checkpoint(marker))
  with pytest.raises(CheckpointError) as error:
    detectron2_pickle.load_detectron2_pickle(str(path))
  assert not marker.exists()
  message = str(error.value)
  assert message.startswith(f'{path}: refused')
  assert 'builtins.exec' in message


@pytest.mark.parametrize('module,name', [
    ('os', 'system'), ('posix', 'system'), ('builtins', 'eval'),
    ('builtins', 'getattr'), ('subprocess', 'Popen'), ('numpy', 'load'),
    ('torch._utils', '_rebuild_tensor_v2')])
def test_any_other_global_is_refused_by_name(tmp_path, module, name):
  # Protocol 0: GLOBAL module.name, then a call with one string argument.
  path = tmp_path / 'x.pkl'
  path.write_bytes(f'c{module}\n{name}\n(Vtouch pwned\ntR.'.encode())
  with pytest.raises(CheckpointError, match=rf'refused.*{module}\.{name}'):
    detectron2_pickle.load_detectron2_pickle(str(path))


def test_persistent_ids_and_non_latin1_codecs_are_refused(tmp_path):
  persistent = tmp_path / 'torch_storage.pkl'
  persistent.write_bytes(b'(dp0\nVa\np1\nPstorage0\ns.')
  with pytest.raises(CheckpointError, match='refused.*persistent id'):
    detectron2_pickle.load_detectron2_pickle(str(persistent))
  codec = tmp_path / 'codec.pkl'
  codec.write_bytes(b'(dVa\nc_codecs\nencode\n(Vx\nVrot13\ntRs.')
  with pytest.raises(CheckpointError, match="refused.*encoding 'rot13'"):
    detectron2_pickle.load_detectron2_pickle(str(codec))


@pytest.mark.parametrize('protocol', [2, 4, 5])
def test_detectron2_checkpoint_contents_load(tmp_path, protocol):
  """detectron2's layout: `{'model': {...}, '__author__', 'matching_heuristics'}`
  with arrays of several dtypes, numpy scalars and OrderedDicts."""
  model = collections.OrderedDict([
      ('res2.0.conv1.weight', np.arange(24, dtype=np.float32).reshape(
          [2, 3, 2, 2])),
      ('res2.0.conv1.norm.running_mean', np.linspace(0, 1, 5)),
      ('stem.conv1.norm.num_batches_tracked', np.int64(7)),
      ('fortran', np.asfortranarray(np.ones([3, 2], np.float16))),
  ])
  path = tmp_path / 'R-50.pkl'
  path.write_bytes(pickle.dumps(
      {'model': model, '__author__': 'torchvision',
       'matching_heuristics': True, 'extra': [None, 1.5, b'\x00\xff', (1,)]},
      protocol=protocol))
  tensors = detectron2_pickle.load_detectron2_pickle(str(path))
  assert list(tensors) == list(model)
  for name, value in model.items():
    np.testing.assert_array_equal(tensors[name], value)
    assert tensors[name].dtype == np.asarray(value).dtype


def test_the_reference_checkpoints_use_allowed_globals_only(goldens_dir):
  """Both official key spellings (written by numpy 2, `numpy._core`) load."""
  directory = goldens_dir / 'reference_forward'
  if not directory.is_dir():
    pytest.skip(f'{directory} not found.')
  for name in ('weights.pkl', 'weights_official_naming.pkl'):
    path = directory / name
    tensors = detectron2_pickle.load_detectron2_pickle(str(path))
    with open(path, 'rb') as stream:
      unrestricted = pickle.load(stream, encoding='latin1')
    unrestricted = unrestricted.get('model', unrestricted)
    assert sorted(tensors) == sorted(unrestricted)
    for key, value in unrestricted.items():
      np.testing.assert_array_equal(tensors[key], value)
