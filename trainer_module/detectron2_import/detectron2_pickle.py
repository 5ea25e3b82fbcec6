"""Reads detectron2 `.pkl` checkpoints (numpy arrays, no PyTorch needed).

detectron2 checkpoints are pickles of `{'model': {name: ndarray}, ...}`
(`__author__`, `matching_heuristics`), or of the bare `{name: ndarray}`.

MaskFormer checkpoints come in two key spellings: `model.state_dict()` names
(`sem_seg_head.pixel_decoder.layer_4.weight`) and the older (v1) names of the
official model-zoo files, without `pixel_decoder.` after `sem_seg_head.`
(`sem_seg_head.layer_4.weight`). `normalize_maskformer_names` maps both to
the state_dict spelling, with the rule of `MaskFormerHead._load_from_state_dict`
(every `sem_seg_head.X` not under `predictor.` is `sem_seg_head.pixel_decoder.X`).

A `.pkl` from elsewhere is untrusted: unpickling can call any importable
function. `RestrictedUnpickler` builds only what a checkpoint of numpy arrays
needs (arrays, dtypes, numpy scalars, dicts/OrderedDicts, lists, tuples,
strings, bytes, numbers, booleans, None) and refuses every other global before
it is imported or called, as PyTorch's `weights_only` loading does.
"""

import codecs
import collections
import pickle
from typing import Any, Dict

import numpy as np
import tensorflow as tf

HEAD_PREFIX = 'sem_seg_head.'
PIXEL_DECODER_PREFIX = 'sem_seg_head.pixel_decoder.'
PREDICTOR_PREFIX = 'sem_seg_head.predictor.'


# numpy's array/scalar reconstruction functions, under numpy 1
# (`numpy.core`) and numpy 2 (`numpy._core`) module names.
_NUMPY_FUNCTIONS = frozenset(
    (f'{package}.{module}', name)
    for package in ('numpy.core', 'numpy._core')
    for module, name in (('multiarray', '_reconstruct'),
                         ('multiarray', 'scalar'),
                         ('numeric', '_frombuffer')))
_ALLOWED_CLASSES = {
    ('numpy', 'ndarray'): np.ndarray,
    ('numpy', 'dtype'): np.dtype,
    ('collections', 'OrderedDict'): collections.OrderedDict,
}
# Python 2 module name `__builtin__` is mapped to `builtins` by pickle.
_BUILTINS = frozenset({
    'dict', 'list', 'tuple', 'set', 'frozenset', 'bytearray', 'bytes', 'str',
    'int', 'float', 'complex', 'bool'})


class CheckpointError(ValueError):
  """A checkpoint that cannot be read or converted (names the file/tensors)."""


class RefusedGlobalError(pickle.UnpicklingError):
  """The pickle asked for a global that a checkpoint of arrays never needs."""

  def __init__(self, global_name: str):
    super().__init__(global_name)
    self.global_name = global_name


def _latin1_encode(text: str, encoding: str = 'utf-8') -> bytes:
  """`_codecs.encode` as protocol-2 pickles of bytes use it (latin1 only)."""
  if encoding.lower() not in ('latin1', 'latin-1', 'latin_1', 'iso-8859-1'):
    raise RefusedGlobalError(f'_codecs.encode with encoding {encoding!r}')
  return codecs.encode(text, 'latin1')


class RestrictedUnpickler(pickle.Unpickler):
  """An Unpickler that builds numpy arrays and plain containers only."""

  def find_class(self, module: str, name: str) -> Any:
    if (module, name) in _ALLOWED_CLASSES:
      return _ALLOWED_CLASSES[(module, name)]
    if module == 'builtins' and name in _BUILTINS:
      return super().find_class(module, name)
    if (module, name) == ('_codecs', 'encode'):
      return _latin1_encode
    if (module, name) in _NUMPY_FUNCTIONS:
      return super().find_class(module, name)
    raise RefusedGlobalError(f'{module}.{name}')

  def persistent_load(self, pid: Any) -> Any:
    raise RefusedGlobalError('a persistent id (a PyTorch storage)')


def load_detectron2_pickle(path: str) -> Dict[str, np.ndarray]:
  """The `{name: float32 ndarray}` tensors of a detectron2 `.pkl` file.

  The file is read with `RestrictedUnpickler`: nothing in it can run code.

  Raises:
    CheckpointError: naming `path` if it is not a pickle of a dict of arrays,
      or (naming the global too) if it asks for anything but numpy arrays and
      plain containers.
  """
  if not tf.io.gfile.exists(path):
    raise CheckpointError(f'{path}: no such checkpoint file.')
  try:
    with tf.io.gfile.GFile(path, 'rb') as stream:
      data = RestrictedUnpickler(stream, encoding='latin1').load()
  except RefusedGlobalError as error:
    raise CheckpointError(
        f'{path}: refused: the pickle asks for {error.global_name}, which a '
        'checkpoint of numpy arrays never needs (loading it could run code '
        'on this machine). Only numpy arrays, dtypes and scalars, dicts, '
        'lists, tuples, strings, bytes, numbers, booleans and None are '
        'loaded.') from None
  except Exception as error:
    raise CheckpointError(
        f'{path}: not a detectron2 .pkl checkpoint (unpickling failed: '
        f'{type(error).__name__}: {error}). A PyTorch .pth file must first be '
        'converted to a .pkl of numpy arrays.') from error
  if isinstance(data, dict) and isinstance(data.get('model'), dict):
    data = data['model']
  if not isinstance(data, dict) or not data:
    raise CheckpointError(
        f'{path}: expected a dict of tensors (or {{"model": {{...}}}}), got '
        f'{type(data).__name__}.')
  tensors = {}
  bad = []
  for name, value in data.items():
    if not isinstance(value, (np.ndarray, np.generic)):
      bad.append(f'{name} ({type(value).__name__})')
      continue
    tensors[str(name)] = np.asarray(value)
  if bad:
    raise CheckpointError(
        f'{path}: {len(bad)} value(s) are not numpy arrays (a torch-pickled '
        f'checkpoint must be converted to numpy first): {", ".join(bad[:10])}'
        + (' ...' if len(bad) > 10 else ''))
  return tensors


def normalize_maskformer_names(
    tensors: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """Renames official (v1) pixel-decoder keys to the state_dict spelling.

  Raises:
    CheckpointError: if both spellings of a tensor are present.
  """
  normalized = {}
  for name, value in tensors.items():
    new_name = name
    if (name.startswith(HEAD_PREFIX) and
        not name.startswith((PIXEL_DECODER_PREFIX, PREDICTOR_PREFIX))):
      new_name = PIXEL_DECODER_PREFIX + name[len(HEAD_PREFIX):]
    if new_name in normalized:
      raise CheckpointError(
          f'The checkpoint has tensor {new_name} twice (as {name} and under '
          'the other key spelling).')
    normalized[new_name] = value
  return normalized
