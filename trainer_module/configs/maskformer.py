"""MaskFormer panoptic segmentation: the task config and its validation.

The config dataclasses (`DataConfig`, `Losses`, `Evaluation`,
`MaskFormerTask`) and `validate_task_config`. The registered experiments that
fill them in live in `trainer_module.configs.maskformer_experiments`.

Data, model and evaluation sizes must agree; `validate_task_config` (called by
the task) raises a ValueError naming the offending field otherwise.
"""

import dataclasses
from typing import List, Optional

from official.core import config_definitions as cfg
from official.modeling import hyperparams
from schemas import load_categories
from trainer_module.configs import maskformer_model

# The reference's augmentation and test sizes (pixels) are scaled by
# output_size / aug_reference_size (see `DataConfig`). The default keeps
# small experiments' inputs at their Transform size; the COCO experiments set
# their own (`maskformer_experiments`).
AUG_REFERENCE_SIZE = 640
INIT_CHECKPOINT_MODULES = ('all', 'backbone')
# TF Model Garden's published ImageNet ResNet-50 (the backbone checkpoint of
# its own Mask R-CNN and RetinaNet COCO configs): the reference MaskFormer
# starts from ImageNet weights and freezes the batch-norm statistics.
IMAGENET_RESNET50_CHECKPOINT = (
    'gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080')
COMPRESSION_TYPES = ('', 'GZIP', 'ZLIB')


@dataclasses.dataclass
class DataConfig(cfg.DataConfig):
  """Input pipeline over tf.Transform outputs (`schemas/transform_output.md`).

  Attributes:
    input_path: Glob(s) of TFRecord files.
    compression_type: Compression of the TFRecord files: 'GZIP' (what TFX
      Transform materializes), 'ZLIB' or '' (none).
    transform_graph_dir: '' when the records hold transformed examples;
      otherwise the records hold raw TFMG examples and the tf.Transform graph
      in this directory (a Transform `transform_graph` artifact) is applied on
      the fly.
    output_size: S, the side of the square transformed images; must equal the
      model's input size.
    num_segment_slots: N, the number of segment slots of the transform.
    shuffle_buffer_size: Shuffle buffer in examples (serialized records; a
      transformed 640² example is about 5 MB). Kept small on purpose.
    aug_rand_hflip: Random horizontal flip (training only).
    aug_crop_prob: Probability of the reference resize + random crop step.
    aug_crop_short_sides: Short sides to choose from before the crop.
    aug_crop_size_range: [min, max] crop height and width, each drawn
      independently.
    aug_scale_short_side_range: [min, max] of the short side of the final
      random resize (both branches), chosen from min, min + step, ..., max.
    aug_scale_short_side_step: The step of those choices (reference 32).
    aug_max_long_side: Cap of the long side of the final resize and of the
      evaluation resize (reference 1333); also capped at `output_size` (the
      reference pads to a variable size instead of a static S×S).
    eval_short_side: Evaluation data only: resize to this short side (long
      side capped as above), as the reference tests at 800; 0 keeps the
      Transform's size (long side = S).
    aug_reference_size: The sizes above are the reference's in pixels and are
      scaled by `output_size / aug_reference_size` (equal values: the
      reference's sizes exactly).
  """
  compression_type: str = 'GZIP'
  transform_graph_dir: str = ''
  output_size: int = 640
  num_segment_slots: int = 100
  global_batch_size: int = 0
  is_training: bool = False
  drop_remainder: bool = True
  shuffle_buffer_size: int = 64
  aug_rand_hflip: bool = True
  aug_crop_prob: float = 0.5
  aug_crop_short_sides: List[int] = dataclasses.field(
      default_factory=lambda: [400, 500, 600])
  aug_crop_size_range: List[int] = dataclasses.field(
      default_factory=lambda: [384, 600])
  aug_scale_short_side_range: List[int] = dataclasses.field(
      default_factory=lambda: [480, 800])
  aug_scale_short_side_step: int = 32
  aug_max_long_side: int = 1333
  eval_short_side: int = 0
  aug_reference_size: int = AUG_REFERENCE_SIZE


@dataclasses.dataclass
class Losses(hyperparams.Config):
  """Set-prediction loss settings (also the Hungarian matching weights).

  Attributes:
    no_object_weight: Cross-entropy weight of queries matched to no target
      (reference 0.1; lower it if the model collapses to "no object").
    class_weight: Weight of the classification loss and matching cost.
    mask_weight: Weight of the sigmoid focal mask loss and matching cost.
    dice_weight: Weight of the dice loss and matching cost.
  """
  no_object_weight: float = 0.1
  class_weight: float = 1.0
  mask_weight: float = 20.0
  dice_weight: float = 1.0


@dataclasses.dataclass
class Evaluation(hyperparams.Config):
  """Panoptic inference and PQ evaluation settings.

  Attributes:
    object_mask_threshold: Minimum class score (exclusive) to keep a query.
    overlap_threshold: Minimum fraction of a kept query's mask it must own.
    full_resolution: Upsample the mask logits bilinearly to the input size S
      and compare with the label maps at S (as the reference, which compares
      at the original image size). False compares at the mask stride 4 with
      the label maps subsampled by nearest neighbour: cheaper, less exact.
  """
  object_mask_threshold: float = 0.8
  overlap_threshold: float = 0.8
  full_resolution: bool = True


@dataclasses.dataclass
class MaskFormerTask(cfg.TaskConfig):
  """MaskFormer panoptic segmentation task.

  Attributes:
    model: The model config.
    train_data: Training input (augmented, shuffled, repeated).
    validation_data: Evaluation input (no augmentation).
    losses: Loss and matching settings.
    evaluation: Panoptic inference and PQ settings.
    init_checkpoint: Checkpoint (prefix, or a directory: its latest
      checkpoint) to initialise from when `model_dir` has none; a local or
      gs:// path, never downloaded. Required when the backbone's batch norm
      is frozen (`model.backbone.resnet.bn_trainable=False`): frozen
      statistics of random weights are meaningless.
    init_checkpoint_modules: 'backbone' restores the backbone only (e.g. an
      ImageNet ResNet saved as `tf.train.Checkpoint(backbone=...)`), 'all'
      the whole model (`model.checkpoint_items`).
  """
  model: maskformer_model.MaskFormerModel = dataclasses.field(
      default_factory=maskformer_model.MaskFormerModel)
  train_data: DataConfig = dataclasses.field(
      default_factory=lambda: DataConfig(is_training=True))
  validation_data: DataConfig = dataclasses.field(
      default_factory=lambda: DataConfig(is_training=False,
                                         drop_remainder=False))
  losses: Losses = dataclasses.field(default_factory=Losses)
  evaluation: Evaluation = dataclasses.field(default_factory=Evaluation)
  init_checkpoint: str = ''
  init_checkpoint_modules: str = 'backbone'


def _fail(field: str, value, requirement: str) -> None:
  raise ValueError(
      f'Invalid MaskFormer task config: {field}={value!r} {requirement}.')


def _validate_data_config(prefix: str, data: DataConfig,
                          model: maskformer_model.MaskFormerModel) -> None:
  """Checks one DataConfig against the model config."""
  height, width = model.input_size[:2]
  if data.output_size != height or data.output_size != width:
    _fail(f'{prefix}.output_size', data.output_size,
          f'must equal the model input size model.input_size='
          f'{list(model.input_size)} (square inputs)')
  if data.num_segment_slots < 1:
    _fail(f'{prefix}.num_segment_slots', data.num_segment_slots, 'must be >= 1')
  if data.num_segment_slots > model.num_queries:
    _fail(f'{prefix}.num_segment_slots', data.num_segment_slots,
          f'must be <= model.num_queries={model.num_queries} (every target '
          'slot must be matchable to a query)')
  if data.compression_type not in COMPRESSION_TYPES:
    _fail(f'{prefix}.compression_type', data.compression_type,
          f'must be one of {COMPRESSION_TYPES}')
  if data.shuffle_buffer_size < 1:
    _fail(f'{prefix}.shuffle_buffer_size', data.shuffle_buffer_size,
          'must be >= 1')
  if not 0.0 <= data.aug_crop_prob <= 1.0:
    _fail(f'{prefix}.aug_crop_prob', data.aug_crop_prob, 'must be in [0, 1]')
  if not data.aug_crop_short_sides or min(data.aug_crop_short_sides) < 1:
    _fail(f'{prefix}.aug_crop_short_sides', data.aug_crop_short_sides,
          'must be a non-empty list of positive sizes')
  for name in ('aug_crop_size_range', 'aug_scale_short_side_range'):
    size_range = list(getattr(data, name))
    if (len(size_range) != 2 or size_range[0] < 1 or
        size_range[0] > size_range[1]):
      _fail(f'{prefix}.{name}', size_range, 'must be [min, max] with '
            '1 <= min <= max')
  for name in ('aug_scale_short_side_step', 'aug_max_long_side',
               'aug_reference_size'):
    if getattr(data, name) < 1:
      _fail(f'{prefix}.{name}', getattr(data, name), 'must be >= 1')
  if data.eval_short_side < 0:
    _fail(f'{prefix}.eval_short_side', data.eval_short_side,
          'must be >= 0 (0 keeps the Transform\'s size)')


def _frozen_batch_norm_setting(backbone) -> Optional[str]:
  """The setting that freezes the backbone's batch norm, or None."""
  if backbone.type == 'resnet' and not backbone.resnet.bn_trainable:
    return ('model.backbone.resnet.bn_trainable=False; set it to True to '
            'train from scratch')
  if backbone.type == 'detectron2_resnet':
    return 'model.backbone.type=detectron2_resnet, always FrozenBN'
  return None


def validate_task_config(config: MaskFormerTask) -> None:
  """Raises ValueError naming the first invalid field of a task config."""
  maskformer_model.validate_model_config(config.model)
  num_categories = len(load_categories())
  if config.model.num_classes != num_categories:
    _fail('model.num_classes', config.model.num_classes,
          f'must equal the number of COCO panoptic categories the transform '
          f'maps to ({num_categories})')
  _validate_data_config('train_data', config.train_data, config.model)
  _validate_data_config('validation_data', config.validation_data,
                        config.model)
  losses = config.losses
  if losses.no_object_weight <= 0.0:
    _fail('losses.no_object_weight', losses.no_object_weight, 'must be > 0')
  for name in ('class_weight', 'mask_weight', 'dice_weight'):
    if getattr(losses, name) < 0.0:
      _fail(f'losses.{name}', getattr(losses, name), 'must be >= 0')
  evaluation = config.evaluation
  for name in ('object_mask_threshold', 'overlap_threshold'):
    if not 0.0 <= getattr(evaluation, name) <= 1.0:
      _fail(f'evaluation.{name}', getattr(evaluation, name),
            'must be in [0, 1]')
  if config.init_checkpoint_modules not in INIT_CHECKPOINT_MODULES:
    _fail('init_checkpoint_modules', config.init_checkpoint_modules,
          f'must be one of {INIT_CHECKPOINT_MODULES}')
  frozen_batch_norm = _frozen_batch_norm_setting(config.model.backbone)
  if frozen_batch_norm and not config.init_checkpoint:
    _fail('init_checkpoint', config.init_checkpoint,
          'must name a pretrained checkpoint when the backbone\'s batch norm '
          f'is frozen ({frozen_batch_norm}), e.g. '
          f'{IMAGENET_RESNET50_CHECKPOINT} or a directory written by '
          '`maskformer-tfx import-weights`; otherwise the backbone trains '
          'from random weights with identity batch-norm statistics')
