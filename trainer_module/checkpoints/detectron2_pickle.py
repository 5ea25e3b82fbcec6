"""Reads detectron2 `.pkl` checkpoints (numpy arrays, no PyTorch needed).

detectron2 checkpoints are pickles of `{'model': {name: ndarray}, ...}`
(`__author__`, `matching_heuristics`), or of the bare `{name: ndarray}`.

MaskFormer checkpoints come in two key spellings: `model.state_dict()` names
(`sem_seg_head.pixel_decoder.layer_4.weight`) and the older (v1) names of the
official model-zoo files, without `pixel_decoder.` after `sem_seg_head.`
(`sem_seg_head.layer_4.weight`). `normalize_maskformer_names` maps both to
the state_dict spelling, with the rule of `MaskFormerHead._load_from_state_dict`
(every `sem_seg_head.X` not under `predictor.` is `sem_seg_head.pixel_decoder.X`).
"""

import pickle
from typing import Dict

import numpy as np
import tensorflow as tf

HEAD_PREFIX = 'sem_seg_head.'
PIXEL_DECODER_PREFIX = 'sem_seg_head.pixel_decoder.'
PREDICTOR_PREFIX = 'sem_seg_head.predictor.'


class CheckpointError(ValueError):
  """A checkpoint that cannot be read or converted (names the file/tensors)."""


def load_detectron2_pickle(path: str) -> Dict[str, np.ndarray]:
  """The `{name: float32 ndarray}` tensors of a detectron2 `.pkl` file.

  Raises:
    CheckpointError: naming `path` if it is not a pickle of a dict of arrays.
  """
  if not tf.io.gfile.exists(path):
    raise CheckpointError(f'{path}: no such checkpoint file.')
  try:
    with tf.io.gfile.GFile(path, 'rb') as stream:
      data = pickle.load(stream, encoding='latin1')
  except Exception as error:  # pylint: disable=broad-except
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
