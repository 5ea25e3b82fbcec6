"""MaskFormer panoptic segmentation: task config and registered experiments.

Experiments (registered with `official.core.exp_factory` on import):

* `maskformer_coco_panoptic`: the reference COCO panoptic setup of Cheng et al.
  2021 (R50 + 6 encoder layers, 640×640 static input, AdamW 1e-4, batch 64,
  554,400 steps with the learning rate × 0.1 at 369,600, bfloat16 on TPU),
  its ResNet-50 initialised from TF Model Garden's ImageNet checkpoint
  (`IMAGENET_RESNET50_CHECKPOINT`) with frozen batch norm.
* `maskformer_tiny`: the same architecture scaled down (ResNet-18 × 0.25,
  128×128 input, hidden 64, 20 queries) that trains on a CPU from scratch; the
  default of local pipeline runs and of the tests.

Data, model and evaluation sizes must agree; `validate_task_config` (called by
the task) raises a ValueError naming the offending field otherwise.
"""

import dataclasses
from typing import List, Optional

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.modeling import hyperparams
from official.vision.configs import backbones
from schemas import load_categories
from trainer_module import optimization
from trainer_module.configs import maskformer_model

# The reference's augmentation and test sizes (pixels) are scaled by
# output_size / aug_reference_size (see `DataConfig`). The default keeps
# small experiments' inputs at their Transform size; the COCO experiments set
# their own: 1344 reproduces the reference at S = 1344, and 1067 (the long
# side of a 4:3 COCO image at the reference's test size, 1067×800) fits that
# test size into S = 640.
AUG_REFERENCE_SIZE = 640
COCO_640_AUG_REFERENCE_SIZE = 1067
# Model inputs are padded square images of the data's output_size S and the
# mask logits have stride 4.
MASK_STRIDE = 4
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


def _adamw_optimization(learning_rate: float, weight_decay: float,
                        backbone_lr_multiplier: float, clip_norm: float,
                        decay_steps: List[int],
                        warmup_steps: Optional[int] = None
                       ) -> optimization.OptimizationConfig:
  """AdamW as in the reference solver (stepwise decay by 0.1)."""
  config = {
      'optimizer': {
          'type': optimization.OPTIMIZER_TYPE,
          optimization.OPTIMIZER_TYPE: {
              'weight_decay_rate': weight_decay,
              # No decay on normalisation parameters (gamma/beta) and the
              # query embeddings; like the reference, biases are decayed.
              'exclude_from_weight_decay': ['gamma', 'beta', 'embeddings'],
              'epsilon': 1e-8,  # PyTorch's AdamW default.
              'lr_multiplier': backbone_lr_multiplier,
              'lr_multiplier_pattern': optimization.BACKBONE_VARIABLES_PATTERN,
              # Whole-model clipping of the aggregated gradients (the
              # AdamWeightDecay clip would act before the cross-replica sum).
              'gradient_clip_norm': 0.0,
              'global_clipnorm': clip_norm,
          },
      },
      'learning_rate': {
          'type': 'stepwise',
          'stepwise': {
              'boundaries': decay_steps,
              'values': [learning_rate * 0.1**i
                         for i in range(len(decay_steps) + 1)],
          },
      },
  }
  if warmup_steps:
    config['warmup'] = {'type': 'linear',
                        'linear': {'warmup_steps': warmup_steps}}
  return optimization.OptimizationConfig(config)


def _restrictions() -> List[str]:
  return ['task.train_data.is_training != None',
          'task.validation_data.is_training != None']


@exp_factory.register_config_factory('maskformer_coco_panoptic')
def maskformer_coco_panoptic() -> cfg.ExperimentConfig:
  """Reference MaskFormer R50 + 6 Enc on COCO panoptic (PQ 46.5 reported)."""
  train_steps = 554_400
  output_size = 640
  num_segment_slots = 100
  model = maskformer_model.MaskFormerModel(
      input_size=[output_size, output_size, 3])
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
      task=MaskFormerTask(
          model=model,
          # The reference's scale jitter scaled by 0.6 to fit S = 640 (see
          # maskformer_coco_panoptic_1344 for the unscaled one). Evaluation
          # keeps the Transform's size (long side 640), as serving does: for
          # 4:3 and wider images the reference's test size scaled by 0.6.
          train_data=DataConfig(
              is_training=True, global_batch_size=64,
              output_size=output_size, num_segment_slots=num_segment_slots,
              aug_reference_size=COCO_640_AUG_REFERENCE_SIZE),
          validation_data=DataConfig(
              is_training=False, global_batch_size=8, drop_remainder=True,
              output_size=output_size, num_segment_slots=num_segment_slots,
              aug_reference_size=COCO_640_AUG_REFERENCE_SIZE),
          losses=Losses(no_object_weight=0.1),
          init_checkpoint=IMAGENET_RESNET50_CHECKPOINT,
          init_checkpoint_modules='backbone'),
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=625,  # 5,000 val2017 images / 8.
          validation_interval=5000,
          steps_per_loop=1000,
          summary_interval=1000,
          checkpoint_interval=5000,
          best_checkpoint_eval_metric='pq',
          best_checkpoint_metric_comp='higher',
          optimizer_config=_adamw_optimization(
              learning_rate=1e-4, weight_decay=1e-4,
              backbone_lr_multiplier=0.1, clip_norm=0.01,
              decay_steps=[369_600])),
      restrictions=_restrictions())


@exp_factory.register_config_factory('maskformer_coco_panoptic_1344')
def maskformer_coco_panoptic_1344() -> cfg.ExperimentConfig:
  """`maskformer_coco_panoptic` at the reference's scale: S = 1344.

  Training resizes the short side to one of 480, 512, ..., 800 with the long
  side at most 1333 (after the reference's 50% resize + crop branch) and
  evaluation to short side 800, long side at most 1333: the reference's
  sizes exactly, inside a static 1344×1344 padded input (4.4× the pixels of
  the 640 experiment).
  """
  config = maskformer_coco_panoptic()
  size = 1344
  config.task.model.input_size = [size, size, 3]
  for data in (config.task.train_data, config.task.validation_data):
    data.output_size = size
    data.aug_reference_size = size
  config.task.validation_data.eval_short_side = 800
  return config


@exp_factory.register_config_factory('maskformer_tiny')
def maskformer_tiny() -> cfg.ExperimentConfig:
  """A small MaskFormer trained from scratch on CPU (synthetic sample)."""
  train_steps = 300
  output_size = 128
  num_segment_slots = 16
  model = maskformer_model.MaskFormerModel(
      num_classes=133,
      num_queries=20,
      hidden_size=64,
      input_size=[output_size, output_size, 3],
      # Trained from scratch (no pretrained checkpoint offline): batch norm is
      # trainable, unlike the reference's frozen ImageNet statistics.
      backbone=backbones.Backbone(
          type='resnet',
          resnet=backbones.ResNet(
              model_id=18, depth_multiplier=0.25, bn_trainable=True)),
      pixel_decoder=maskformer_model.PixelDecoder(
          num_encoder_layers=1, num_heads=4, ffn_dim=128, dropout=0.0,
          mask_dim=64, fpn_norm_groups=32),
      transformer_decoder=maskformer_model.TransformerDecoder(
          num_layers=2, num_heads=4, ffn_dim=128, dropout=0.0),
      deep_supervision=True)
  return cfg.ExperimentConfig(
      task=MaskFormerTask(
          model=model,
          train_data=DataConfig(
              is_training=True, global_batch_size=8,
              output_size=output_size, num_segment_slots=num_segment_slots),
          validation_data=DataConfig(
              is_training=False, global_batch_size=8, drop_remainder=False,
              output_size=output_size, num_segment_slots=num_segment_slots),
          losses=Losses(no_object_weight=0.1),
          init_checkpoint_modules='backbone'),
      trainer=cfg.TrainerConfig(
          train_steps=train_steps,
          validation_steps=-1,
          validation_interval=train_steps,
          steps_per_loop=50,
          summary_interval=50,
          checkpoint_interval=100,
          max_to_keep=2,
          best_checkpoint_eval_metric='pq',
          best_checkpoint_metric_comp='higher',
          optimizer_config=_adamw_optimization(
              learning_rate=1e-3, weight_decay=1e-4,
              backbone_lr_multiplier=1.0, clip_norm=0.01,
              decay_steps=[train_steps * 2 // 3], warmup_steps=20)),
      restrictions=_restrictions())
