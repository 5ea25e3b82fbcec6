"""Builds our model for a detectron2 MaskFormer checkpoint and converts it."""

import dataclasses
import re
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from trainer_module.detectron2_import import detectron2_config
from trainer_module.detectron2_import import detectron2_mapping
from trainer_module.detectron2_import import detectron2_pickle
# Builds layers in float32 whatever the global (training) policy.
from trainer_module.export import _float32_policy as float32_policy
from trainer_module.modeling import factory
from trainer_module.modeling.backbones import detectron2_resnet

# Keys of detectron2's torchvision ImageNet conversion that are no backbone
# weights: the ImageNet classifier (`fc` becomes `stem.fc`) and BN counters.
IMAGENET_IGNORED = (r'(backbone\.)?stem\.fc\.(weight|bias)',
                    r'.*\.num_batches_tracked')


@dataclasses.dataclass
class Converted:
  """A converted model and what the config said."""
  model: tf_keras.Model
  settings: detectron2_config.Detectron2Settings
  num_variables: int


def convert_maskformer(pkl_path: str, config_path: Optional[str],
                       image_size: int) -> Converted:
  """Our MaskFormer (float32, built for S × S) with the checkpoint's weights.

  Args:
    pkl_path: A detectron2 MaskFormer checkpoint (either key spelling).
    config_path: Its detectron2 `config.yaml`; None: the official R50 COCO
      panoptic settings.
    image_size: S, the square input size (a multiple of 32).

  Raises:
    CheckpointError: a bad file or config, or a checkpoint that does not
      match the model exactly (names every leftover tensor and variable).
  """
  settings = detectron2_config.settings_from_config(
      detectron2_config.load_config(config_path), image_size)
  tensors = detectron2_pickle.normalize_maskformer_names(
      detectron2_pickle.load_detectron2_pickle(pkl_path))
  with float32_policy():
    model = factory.build_maskformer_model(settings.model)
    model(tf.zeros([1, image_size, image_size, 3]), training=False)
  count = detectron2_mapping.assign(
      tensors, model.checkpoint_items, pkl_path,
      num_classes=settings.model.num_classes)
  return Converted(model, settings, count)


def backbone_tensors(tensors: Dict[str, np.ndarray]
                     ) -> Tuple[Dict[str, np.ndarray], list]:
  """ImageNet-backbone tensors under `backbone.` names, and the ignored ones.

  Accepts detectron2's torchvision conversion (`stem.conv1.weight`,
  `res2.0.conv1.*`), the same under `backbone.` or `backbone.bottom_up.`.
  """
  renamed, ignored = {}, []
  for name, value in tensors.items():
    if any(re.fullmatch(pattern, name) for pattern in IMAGENET_IGNORED):
      ignored.append(name)
      continue
    for prefix in ('backbone.bottom_up.', 'backbone.'):
      if name.startswith(prefix):
        name = name[len(prefix):]
        break
    renamed['backbone.' + name] = value
  return renamed, ignored


def convert_backbone(pkl_path: str, config_path: Optional[str],
                     image_size: int
                     ) -> Tuple[detectron2_resnet.Detectron2ResNet, list]:
  """The detectron2 ResNet of the config with ImageNet weights from a `.pkl`.

  Returns the backbone and the names of ignored tensors (the classifier).
  """
  settings = detectron2_config.settings_from_config(
      detectron2_config.load_config(config_path), image_size)
  tensors, ignored = backbone_tensors(
      detectron2_pickle.load_detectron2_pickle(pkl_path))
  with float32_policy():
    backbone = detectron2_resnet.Detectron2ResNet(
        settings.model.backbone.detectron2_resnet)
    backbone(tf.zeros([1, image_size, image_size, 3]))
  detectron2_mapping.assign(tensors, {'backbone': backbone}, pkl_path)
  return backbone, ignored
