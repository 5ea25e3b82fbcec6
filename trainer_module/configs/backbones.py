"""Backbone configs: TFMG's backbones plus the detectron2-convention ResNet.

`Backbone` extends TFMG's `OneOfConfig` of backbones with `detectron2_resnet`,
the ResNet of detectron2 (the original MaskFormer's backbone), so that
weights trained in PyTorch give the same outputs here. The two ResNets
coexist: `type: resnet` is TFMG's ResNet (TF "SAME" padding, TFMG ImageNet
checkpoints), `type: detectron2_resnet` the PyTorch one.
"""

import dataclasses

from official.modeling import hyperparams
from official.vision.configs import backbones

# detectron2 `build_resnet_backbone`: bottleneck blocks per stage.
DETECTRON2_RESNET_BLOCKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3),
                            152: (3, 8, 36, 3)}


@dataclasses.dataclass
class Detectron2ResNet(hyperparams.Config):
  """detectron2's ResNet (`MODEL.RESNETS.*`), bottleneck depths only.

  Attributes:
    depth: 50, 101 or 152 (`DEPTH`).
    stem_out_channels: Channels of the 7×7 stem conv (`STEM_OUT_CHANNELS`).
    res2_out_channels: Output channels of res2 (`RES2_OUT_CHANNELS`);
      doubled at every later stage.
    width_per_group: Bottleneck width of res2 (`WIDTH_PER_GROUP`; groups 1).
    stride_in_1x1: Stride of a stage's first block in its 1×1 conv (True,
      the MSRA/caffe2 models) or its 3×3 conv (False, torchvision models).
    norm_epsilon: FrozenBatchNorm2d epsilon (PyTorch: 1e-5).
    freeze_at: Stages whose convolutions are not trained (0: none; 1: the
      stem; 2: the stem and res2, ...), as `MODEL.BACKBONE.FREEZE_AT`.
  """
  depth: int = 50
  stem_out_channels: int = 64
  res2_out_channels: int = 256
  width_per_group: int = 64
  stride_in_1x1: bool = False
  norm_epsilon: float = 1e-5
  freeze_at: int = 0


@dataclasses.dataclass
class Backbone(backbones.Backbone):
  """TFMG's backbones and `detectron2_resnet`."""
  detectron2_resnet: Detectron2ResNet = dataclasses.field(
      default_factory=Detectron2ResNet)
