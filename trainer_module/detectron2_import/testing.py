"""Test helpers shared by the detectron2 import tests."""

import pickle

import numpy as np

from trainer_module.detectron2_import import detectron2_pickle


def write_imagenet_pkl(reference, path):
  """A test-only detectron2 torchvision R-50.pkl (backbone keys without
  prefix, the ImageNet classifier as stem.fc) from the oracle's backbone.

  Returns its tensors.
  """
  tensors = detectron2_pickle.load_detectron2_pickle(
      str(reference / 'weights.pkl'))
  imagenet = {name[len('backbone.'):]: value
              for name, value in tensors.items()
              if name.startswith('backbone.')}
  imagenet['stem.fc.weight'] = np.zeros([1000, 2048], np.float32)
  imagenet['stem.fc.bias'] = np.zeros([1000], np.float32)
  path.write_bytes(pickle.dumps(
      {'model': imagenet, '__author__': 'torchvision',
       'matching_heuristics': True}))
  return imagenet
