"""The original MaskFormer's models in PyTorch (detectron2) convention.

`maskformer_coco_panoptic_d2` is `maskformer_coco_panoptic` (R50 + 6 Enc,
COCO panoptic, 640²) with detectron2's ResNet-50 (`backbone.type:
detectron2_resnet`: symmetric padding, FrozenBN eps 1e-5, stride in the 3×3
conv), so that the official model-zoo weights converted by
`maskformer-tfx import-weights` and detectron2's torchvision ImageNet R-50
give the original's numerics. `maskformer_coco_panoptic` keeps TFMG's ResNet
and TFMG ImageNet checkpoints.

It has no default `init_checkpoint` (TFMG's ImageNet ResNet does not fit
this backbone): pass a directory written by `maskformer-tfx import-weights`
(the converted model, with `task.init_checkpoint_modules=all`, or detectron2's
ImageNet R-50 converted with `--backbone-only`).
"""

from official.core import config_definitions as cfg
from official.core import exp_factory
from trainer_module.configs import backbones
from trainer_module.configs import experiment_names
from trainer_module.configs import maskformer_experiments

EXPERIMENT = experiment_names.COCO_PANOPTIC_D2


@exp_factory.register_config_factory(EXPERIMENT)
def maskformer_coco_panoptic_d2() -> cfg.ExperimentConfig:
  """Official MaskFormer R50 + 6 Enc COCO panoptic, detectron2 backbone."""
  config = maskformer_experiments.maskformer_coco_panoptic()
  config.task.model.backbone = backbones.Backbone(
      type='detectron2_resnet',
      detectron2_resnet=backbones.Detectron2ResNet(depth=50))
  config.task.init_checkpoint = ''
  return config
