"""MaskFormer model configuration (Cheng et al. 2021, "R50 + 6 Enc").

The dataclasses follow the TF Model Garden `official/vision/configs` style so
that a task config can nest `MaskFormerModel` as its `model` field. Defaults
are the reference COCO panoptic model: ResNet-50 with frozen batch norm, a
6-layer transformer-encoder pixel decoder and a 6-layer DETR decoder with 100
queries over 133 classes.
"""

import dataclasses
from typing import List

from official.modeling import hyperparams
from official.vision.configs import backbones as tfmg_backbones
from official.vision.configs import common
from trainer_module.configs import backbones

# Backbone types that expose the endpoints '2'..'5' (strides 4, 8, 16, 32)
# the pixel decoder consumes: TFMG's ResNet ("SAME" padding, TFMG ImageNet
# checkpoints) and detectron2's (PyTorch padding and FrozenBN, for weights
# trained with the original MaskFormer).
SUPPORTED_BACKBONES = ('resnet', 'detectron2_resnet')
# PyTorch's GroupNorm/LayerNorm epsilon (the reference's, and ours).
TORCH_NORM_EPSILON = 1e-5
# The backbone's output stride; the input height and width must divide by it.
MAX_BACKBONE_STRIDE = 32


@dataclasses.dataclass
class PixelDecoder(hyperparams.Config):
  """Transformer-encoder pixel decoder (FPN over res2..res5).

  Attributes:
    num_encoder_layers: Post-norm transformer encoder layers run on res5.
    num_heads: Attention heads of the encoder layers.
    ffn_dim: Hidden width of the encoder feed-forward networks.
    dropout: Dropout rate inside the encoder layers.
    mask_dim: Channels of the stride-4 per-pixel mask features.
    fpn_norm_groups: Groups of the GroupNorm layers of the FPN convolutions.
    norm_epsilon: Epsilon of the FPN GroupNorms and the encoder LayerNorms.
  """
  num_encoder_layers: int = 6
  num_heads: int = 8
  ffn_dim: int = 2048
  dropout: float = 0.1
  mask_dim: int = 256
  fpn_norm_groups: int = 32
  norm_epsilon: float = TORCH_NORM_EPSILON


@dataclasses.dataclass
class TransformerDecoder(hyperparams.Config):
  """DETR transformer decoder.

  Attributes:
    num_layers: Post-norm decoder layers; each gives one set of predictions
      when deep supervision is on.
    num_heads: Attention heads of the self- and cross-attention.
    ffn_dim: Hidden width of the feed-forward networks.
    dropout: Dropout rate inside the decoder layers.
    norm_epsilon: Epsilon of the decoder LayerNorms.
  """
  num_layers: int = 6
  num_heads: int = 8
  ffn_dim: int = 2048
  dropout: float = 0.1
  norm_epsilon: float = TORCH_NORM_EPSILON


@dataclasses.dataclass
class MaskFormerModel(hyperparams.Config):
  """MaskFormer model config.

  Attributes:
    num_classes: Number of real classes K; the class head predicts K + 1
      logits, index K being "no object".
    num_queries: Number of object queries Q.
    hidden_size: Width of the transformer encoder/decoder and of the FPN.
    input_size: Static [height, width, channels] of the model input.
    backbone: Backbone config (one of `SUPPORTED_BACKBONES`). With
      `resnet` (TFMG), batch norm is frozen as in the reference through
      `resnet.bn_trainable=False`; `detectron2_resnet` always uses FrozenBN.
    norm_activation: Batch-norm/activation settings of the TFMG backbone
      (epsilon 1e-5, PyTorch's).
    pixel_decoder: Pixel decoder settings.
    transformer_decoder: Transformer decoder settings.
    deep_supervision: Also output the predictions of every decoder layer but
      the last (`aux_class_logits`, `aux_mask_logits`).
  """
  num_classes: int = 133
  num_queries: int = 100
  hidden_size: int = 256
  input_size: List[int] = dataclasses.field(
      default_factory=lambda: [640, 640, 3])
  backbone: backbones.Backbone = dataclasses.field(
      default_factory=lambda: backbones.Backbone(
          type='resnet',
          resnet=tfmg_backbones.ResNet(model_id=50, bn_trainable=False)))
  norm_activation: common.NormActivation = dataclasses.field(
      default_factory=lambda: common.NormActivation(
          activation='relu', use_sync_bn=False, norm_momentum=0.9,
          norm_epsilon=1e-5))
  pixel_decoder: PixelDecoder = dataclasses.field(default_factory=PixelDecoder)
  transformer_decoder: TransformerDecoder = dataclasses.field(
      default_factory=TransformerDecoder)
  deep_supervision: bool = True


def maskformer_tiny_model() -> MaskFormerModel:
  """A small MaskFormer (ResNet-18 × 0.25, 64×64 input) for smoke tests."""
  return MaskFormerModel(
      num_classes=5,
      num_queries=8,
      hidden_size=32,
      input_size=[64, 64, 3],
      backbone=backbones.Backbone(
          type='resnet',
          resnet=tfmg_backbones.ResNet(
              model_id=18, depth_multiplier=0.25, bn_trainable=False)),
      pixel_decoder=PixelDecoder(
          num_encoder_layers=2, num_heads=4, ffn_dim=64, dropout=0.1,
          mask_dim=16, fpn_norm_groups=8),
      transformer_decoder=TransformerDecoder(
          num_layers=3, num_heads=4, ffn_dim=64, dropout=0.1),
      deep_supervision=True)


def validate_model_config(config: MaskFormerModel) -> None:
  """Raises ValueError naming the first invalid field of `config`."""

  def fail(field: str, value, requirement: str):
    raise ValueError(
        f'Invalid MaskFormer model config: {field}={value!r} {requirement}.')

  if config.num_classes < 1:
    fail('num_classes', config.num_classes, 'must be >= 1')
  if config.num_queries < 1:
    fail('num_queries', config.num_queries, 'must be >= 1')
  if config.hidden_size < 4 or config.hidden_size % 4:
    # Half of the channels encode each axis as interleaved sin/cos pairs.
    fail('hidden_size', config.hidden_size,
         'must be a positive multiple of 4 (sine position encoding)')
  input_size = list(config.input_size)
  if len(input_size) != 3 or input_size[2] != 3:
    fail('input_size', input_size, 'must be [height, width, 3]')
  for axis, size in zip(('height', 'width'), input_size[:2]):
    if size < MAX_BACKBONE_STRIDE or size % MAX_BACKBONE_STRIDE:
      fail('input_size', input_size,
           f'must have a {axis} that is a positive multiple of '
           f'{MAX_BACKBONE_STRIDE} (the backbone output stride)')
  if config.backbone.type not in SUPPORTED_BACKBONES:
    fail('backbone.type', config.backbone.type,
         f'is not supported; expected one of {SUPPORTED_BACKBONES}')

  pixel_decoder = config.pixel_decoder
  transformer_decoder = config.transformer_decoder
  for prefix, num_heads in (
      ('pixel_decoder', pixel_decoder.num_heads),
      ('transformer_decoder', transformer_decoder.num_heads)):
    if num_heads < 1 or config.hidden_size % num_heads:
      fail(f'{prefix}.num_heads', num_heads,
           f'must be >= 1 and divide hidden_size={config.hidden_size}')
  for prefix, ffn_dim, dropout in (
      ('pixel_decoder', pixel_decoder.ffn_dim, pixel_decoder.dropout),
      ('transformer_decoder', transformer_decoder.ffn_dim,
       transformer_decoder.dropout)):
    if ffn_dim < 1:
      fail(f'{prefix}.ffn_dim', ffn_dim, 'must be >= 1')
    if not 0.0 <= dropout < 1.0:
      fail(f'{prefix}.dropout', dropout, 'must be in [0, 1)')
  if pixel_decoder.num_encoder_layers < 0:
    fail('pixel_decoder.num_encoder_layers', pixel_decoder.num_encoder_layers,
         'must be >= 0')
  if pixel_decoder.mask_dim < 1:
    fail('pixel_decoder.mask_dim', pixel_decoder.mask_dim, 'must be >= 1')
  groups = pixel_decoder.fpn_norm_groups
  if groups < 1 or config.hidden_size % groups:
    fail('pixel_decoder.fpn_norm_groups', groups,
         f'must be >= 1 and divide hidden_size={config.hidden_size}')
  for prefix, epsilon in (
      ('pixel_decoder', pixel_decoder.norm_epsilon),
      ('transformer_decoder', transformer_decoder.norm_epsilon)):
    if not epsilon > 0:
      fail(f'{prefix}.norm_epsilon', epsilon, 'must be > 0')
  if transformer_decoder.num_layers < 1:
    fail('transformer_decoder.num_layers', transformer_decoder.num_layers,
         'must be >= 1')
