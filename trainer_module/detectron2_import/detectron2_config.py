"""A detectron2 MaskFormer `config.yaml` → our model and inference settings.

detectron2 writes the full config (`cfg.dump()`) as `config.yaml` beside
every run. Only the keys that shape the model are read; each must have a
value this port implements (R50/101/152 with FrozenBN, the
TransformerEncoderPixelDecoder with GroupNorm, a post-norm DETR decoder),
otherwise the conversion stops naming the key. Missing keys take the values
of the official R50 COCO panoptic model (`OFFICIAL_R50_COCO_PANOPTIC`,
`configs/coco-panoptic/maskformer_panoptic_R50_bs64_554k.yaml`, PQ 46.5).
"""

import dataclasses
from typing import Any, Dict, List, Optional

import yaml

from trainer_module.detectron2_import.detectron2_pickle import CheckpointError
from trainer_module.configs import backbones
from trainer_module.configs import maskformer_model
from trainer_module.dataloaders import maskformer_input

# The official R50 + 6 Enc COCO panoptic model, by detectron2 key.
OFFICIAL_R50_COCO_PANOPTIC = {
    'MODEL.BACKBONE.NAME': 'build_resnet_backbone',
    'MODEL.BACKBONE.FREEZE_AT': 0,
    'MODEL.RESNETS.DEPTH': 50,
    'MODEL.RESNETS.STEM_OUT_CHANNELS': 64,
    'MODEL.RESNETS.RES2_OUT_CHANNELS': 256,
    'MODEL.RESNETS.WIDTH_PER_GROUP': 64,
    'MODEL.RESNETS.NUM_GROUPS': 1,
    'MODEL.RESNETS.STRIDE_IN_1X1': False,
    'MODEL.RESNETS.NORM': 'FrozenBN',
    'MODEL.RESNETS.RES5_DILATION': 1,
    'MODEL.RESNETS.DEFORM_ON_PER_STAGE': [False, False, False, False],
    'MODEL.RESNETS.OUT_FEATURES': ['res2', 'res3', 'res4', 'res5'],
    'MODEL.PIXEL_MEAN': [123.675, 116.28, 103.53],
    'MODEL.PIXEL_STD': [58.395, 57.12, 57.375],
    'INPUT.FORMAT': 'RGB',
    'MODEL.SEM_SEG_HEAD.NAME': 'MaskFormerHead',
    'MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME': 'TransformerEncoderPixelDecoder',
    'MODEL.SEM_SEG_HEAD.IN_FEATURES': ['res2', 'res3', 'res4', 'res5'],
    'MODEL.SEM_SEG_HEAD.NORM': 'GN',
    'MODEL.SEM_SEG_HEAD.NUM_CLASSES': 133,
    'MODEL.SEM_SEG_HEAD.CONVS_DIM': 256,
    'MODEL.SEM_SEG_HEAD.MASK_DIM': 256,
    'MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS': 6,
    'MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE': 'transformer_encoder',
    'MODEL.MASK_FORMER.DEEP_SUPERVISION': True,
    'MODEL.MASK_FORMER.NO_OBJECT_WEIGHT': 0.1,
    'MODEL.MASK_FORMER.DICE_WEIGHT': 1.0,
    'MODEL.MASK_FORMER.MASK_WEIGHT': 20.0,
    'MODEL.MASK_FORMER.HIDDEN_DIM': 256,
    'MODEL.MASK_FORMER.NUM_OBJECT_QUERIES': 100,
    'MODEL.MASK_FORMER.NHEADS': 8,
    'MODEL.MASK_FORMER.DROPOUT': 0.1,
    'MODEL.MASK_FORMER.DIM_FEEDFORWARD': 2048,
    'MODEL.MASK_FORMER.ENC_LAYERS': 0,
    'MODEL.MASK_FORMER.DEC_LAYERS': 6,
    'MODEL.MASK_FORMER.PRE_NORM': False,
    'MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ': False,
    'MODEL.MASK_FORMER.TEST.PANOPTIC_ON': True,
    'MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD': 0.8,
    'MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD': 0.8,
}
# detectron2 get_norm('GN'): nn.GroupNorm(32, C).
GROUP_NORM_GROUPS = 32
# Values this port requires, by key (anything else is refused).
REQUIRED_VALUES = (
    'MODEL.BACKBONE.NAME', 'MODEL.RESNETS.NUM_GROUPS', 'MODEL.RESNETS.NORM',
    'MODEL.RESNETS.RES5_DILATION', 'MODEL.RESNETS.DEFORM_ON_PER_STAGE',
    'MODEL.RESNETS.OUT_FEATURES', 'INPUT.FORMAT', 'MODEL.SEM_SEG_HEAD.NAME',
    'MODEL.SEM_SEG_HEAD.PIXEL_DECODER_NAME', 'MODEL.SEM_SEG_HEAD.IN_FEATURES',
    'MODEL.SEM_SEG_HEAD.NORM', 'MODEL.MASK_FORMER.TRANSFORMER_IN_FEATURE',
    'MODEL.MASK_FORMER.ENC_LAYERS', 'MODEL.MASK_FORMER.PRE_NORM',
    'MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ')


@dataclasses.dataclass
class Detectron2Settings:
  """What a detectron2 config says, in our terms."""
  model: maskformer_model.MaskFormerModel
  object_mask_threshold: float
  overlap_threshold: float
  no_object_weight: float
  mask_weight: float
  dice_weight: float
  pixel_mean: List[float]
  pixel_std: List[float]


def load_config(path: Optional[str]) -> Dict[str, Any]:
  """The flattened `{'MODEL.RESNETS.DEPTH': 50, ...}` of a config.yaml.

  Without `path`: the official R50 COCO panoptic settings.
  """
  if path is None:
    return dict(OFFICIAL_R50_COCO_PANOPTIC)
  try:
    with open(path, encoding='utf-8') as stream:
      nested = yaml.safe_load(stream)
  except FileNotFoundError as error:
    raise CheckpointError(f'{path}: no such config file.') from error
  except yaml.YAMLError as error:
    raise CheckpointError(f'{path}: not a YAML file ({error}).') from error
  if not isinstance(nested, dict):
    raise CheckpointError(f'{path}: not a detectron2 config (a YAML mapping).')
  flat = {}

  def flatten(prefix, node):
    for key, value in node.items():
      name = f'{prefix}{key}'
      if isinstance(value, dict):
        flatten(name + '.', value)
      else:
        flat[name] = value

  flatten('', nested)
  if flat.get('MODEL.META_ARCHITECTURE', 'MaskFormer') != 'MaskFormer':
    raise CheckpointError(
        f'{path}: MODEL.META_ARCHITECTURE is '
        f'{flat["MODEL.META_ARCHITECTURE"]!r}; only MaskFormer is supported.')
  return {key: flat.get(key, default)
          for key, default in OFFICIAL_R50_COCO_PANOPTIC.items()}


def settings_from_config(config: Dict[str, Any],
                         image_size: int) -> Detectron2Settings:
  """Our model config (input S × S) and settings of a flattened config.

  Raises:
    CheckpointError: naming every key whose value this port does not
      implement.
  """
  problems = []
  for key in REQUIRED_VALUES:
    expected = OFFICIAL_R50_COCO_PANOPTIC[key]
    if config[key] != expected:
      problems.append(f'{key}={config[key]!r} (supported: {expected!r})')
  if config['MODEL.RESNETS.DEPTH'] not in backbones.DETECTRON2_RESNET_BLOCKS:
    problems.append(
        f'MODEL.RESNETS.DEPTH={config["MODEL.RESNETS.DEPTH"]!r} (supported: '
        f'{sorted(backbones.DETECTRON2_RESNET_BLOCKS)})')
  hidden = config['MODEL.MASK_FORMER.HIDDEN_DIM']
  if config['MODEL.SEM_SEG_HEAD.CONVS_DIM'] != hidden:
    problems.append(
        f'MODEL.SEM_SEG_HEAD.CONVS_DIM={config["MODEL.SEM_SEG_HEAD.CONVS_DIM"]}'
        f' != MODEL.MASK_FORMER.HIDDEN_DIM={hidden} (the predictor would need '
        'an input projection)')
  if not config['MODEL.MASK_FORMER.TEST.PANOPTIC_ON']:
    problems.append('MODEL.MASK_FORMER.TEST.PANOPTIC_ON=False (this pipeline '
                    'is panoptic)')
  for key, ours in (('MODEL.PIXEL_MEAN', maskformer_input.MEAN_RGB),
                    ('MODEL.PIXEL_STD', maskformer_input.STDDEV_RGB)):
    if any(abs(float(a) - float(b)) > 1e-3
           for a, b in zip(config[key], ours)) or len(config[key]) != 3:
      problems.append(f'{key}={config[key]!r} (the pipeline normalises with '
                      f'{[round(float(v), 3) for v in ours]})')
  if problems:
    raise CheckpointError('Unsupported detectron2 config: ' +
                          '; '.join(problems) + '.')
  model = maskformer_model.MaskFormerModel(
      num_classes=int(config['MODEL.SEM_SEG_HEAD.NUM_CLASSES']),
      num_queries=int(config['MODEL.MASK_FORMER.NUM_OBJECT_QUERIES']),
      hidden_size=int(hidden),
      input_size=[image_size, image_size, 3],
      backbone=backbones.Backbone(
          type='detectron2_resnet',
          detectron2_resnet=backbones.Detectron2ResNet(
              depth=int(config['MODEL.RESNETS.DEPTH']),
              stem_out_channels=int(config['MODEL.RESNETS.STEM_OUT_CHANNELS']),
              res2_out_channels=int(config['MODEL.RESNETS.RES2_OUT_CHANNELS']),
              width_per_group=int(config['MODEL.RESNETS.WIDTH_PER_GROUP']),
              stride_in_1x1=bool(config['MODEL.RESNETS.STRIDE_IN_1X1']),
              norm_epsilon=1e-5,
              freeze_at=int(config['MODEL.BACKBONE.FREEZE_AT']))),
      pixel_decoder=maskformer_model.PixelDecoder(
          num_encoder_layers=int(
              config['MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS']),
          num_heads=int(config['MODEL.MASK_FORMER.NHEADS']),
          ffn_dim=int(config['MODEL.MASK_FORMER.DIM_FEEDFORWARD']),
          dropout=float(config['MODEL.MASK_FORMER.DROPOUT']),
          mask_dim=int(config['MODEL.SEM_SEG_HEAD.MASK_DIM']),
          fpn_norm_groups=GROUP_NORM_GROUPS,
          norm_epsilon=1e-5),
      transformer_decoder=maskformer_model.TransformerDecoder(
          num_layers=int(config['MODEL.MASK_FORMER.DEC_LAYERS']),
          num_heads=int(config['MODEL.MASK_FORMER.NHEADS']),
          ffn_dim=int(config['MODEL.MASK_FORMER.DIM_FEEDFORWARD']),
          dropout=float(config['MODEL.MASK_FORMER.DROPOUT']),
          norm_epsilon=1e-5),
      deep_supervision=bool(config['MODEL.MASK_FORMER.DEEP_SUPERVISION']))
  try:
    maskformer_model.validate_model_config(model)
  except ValueError as error:
    raise CheckpointError(f'The detectron2 config gives an invalid model '
                          f'(--image-size {image_size}?): {error}') from error
  return Detectron2Settings(
      model=model,
      object_mask_threshold=float(
          config['MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD']),
      overlap_threshold=float(
          config['MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD']),
      no_object_weight=float(config['MODEL.MASK_FORMER.NO_OBJECT_WEIGHT']),
      mask_weight=float(config['MODEL.MASK_FORMER.MASK_WEIGHT']),
      dice_weight=float(config['MODEL.MASK_FORMER.DICE_WEIGHT']),
      pixel_mean=[float(v) for v in config['MODEL.PIXEL_MEAN']],
      pixel_std=[float(v) for v in config['MODEL.PIXEL_STD']])
