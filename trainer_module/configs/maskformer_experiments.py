"""The registered MaskFormer experiments (`official.core.exp_factory`).

Registered on import (`trainer_module.registry_imports` imports this module;
the names are in `experiment_names`):

* `maskformer_coco_panoptic`: the reference COCO panoptic setup of Cheng et al.
  2021 (R50 + 6 encoder layers, 640×640 static input, AdamW 1e-4, batch 64,
  554,400 steps with the learning rate × 0.1 at 369,600, bfloat16 on TPU: 8
  images per chip of compile-vertex's default 8-chip v5e slice),
  its ResNet-50 initialised from TF Model Garden's ImageNet checkpoint
  (`maskformer.IMAGENET_RESNET50_CHECKPOINT`) with frozen batch norm.
* `maskformer_coco_panoptic_1344`: the same at the reference's scale (S = 1344)
  with global batch 16 (what fits a TPU chip), the learning rate and schedule
  scaled linearly.
* `maskformer_tiny`: the same architecture scaled down (ResNet-18 × 0.25,
  128×128 input, hidden 64, 20 queries) that trains on a CPU from scratch; the
  default experiment (`experiment_names.DEFAULT_EXPERIMENT`) of pipeline runs
  and the tests.

The config dataclasses they fill in are in `trainer_module.configs.maskformer`.
"""

from typing import List, Optional

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.vision.configs import backbones
from trainer_module import optimization
from trainer_module.configs import experiment_names
from trainer_module.configs import maskformer_model
from trainer_module.configs import maskformer as maskformer_cfg
# 1067, the long side of a 4:3 COCO image at the reference's test size
# (1067×800), fits that test size into S = 640 (see
# `maskformer.AUG_REFERENCE_SIZE`); 1344 reproduces the reference at S = 1344.
COCO_640_AUG_REFERENCE_SIZE = 1067
# Global batch of maskformer_coco_panoptic_1344 (see there).
COCO_1344_GLOBAL_BATCH = 16


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


@exp_factory.register_config_factory(experiment_names.COCO_PANOPTIC)
def maskformer_coco_panoptic() -> cfg.ExperimentConfig:
  """Reference MaskFormer R50 + 6 Enc on COCO panoptic (PQ 46.5 reported)."""
  train_steps = 554_400
  output_size = 640
  num_segment_slots = 100
  model = maskformer_model.MaskFormerModel(
      input_size=[output_size, output_size, 3])
  return cfg.ExperimentConfig(
      runtime=cfg.RuntimeConfig(mixed_precision_dtype='bfloat16'),
      task=maskformer_cfg.MaskFormerTask(
          model=model,
          # The reference's scale jitter scaled by 0.6 to fit S = 640 (see
          # maskformer_coco_panoptic_1344 for the unscaled one). Evaluation
          # keeps the Transform's size (long side 640), as serving does: for
          # 4:3 and wider images the reference's test size scaled by 0.6.
          train_data=maskformer_cfg.DataConfig(
              is_training=True, global_batch_size=64,
              output_size=output_size, num_segment_slots=num_segment_slots,
              aug_reference_size=COCO_640_AUG_REFERENCE_SIZE),
          validation_data=maskformer_cfg.DataConfig(
              is_training=False, global_batch_size=8, drop_remainder=True,
              output_size=output_size, num_segment_slots=num_segment_slots,
              aug_reference_size=COCO_640_AUG_REFERENCE_SIZE),
          losses=maskformer_cfg.Losses(no_object_weight=0.1),
          init_checkpoint=maskformer_cfg.IMAGENET_RESNET50_CHECKPOINT,
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


@exp_factory.register_config_factory(experiment_names.COCO_PANOPTIC_1344)
def maskformer_coco_panoptic_1344() -> cfg.ExperimentConfig:
  """`maskformer_coco_panoptic` at the reference's scale: S = 1344, batch 16.

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
  # 2 images per chip of compile-vertex's default slice (8 v5e chips): 8 per
  # chip, the original's 64 over 8 GPUs, need about 46 GiB of a 16 GiB chip
  # at this size (docs/training_on_tpu.md). The learning rate and the
  # schedule scale linearly with the batch, as detectron2's
  # `DefaultTrainer.auto_scale_workers` scales the original's: the same
  # images seen, each decay after the same share of them.
  scale = config.task.train_data.global_batch_size // COCO_1344_GLOBAL_BATCH
  config.task.train_data.global_batch_size = COCO_1344_GLOBAL_BATCH
  config.trainer.train_steps *= scale
  stepwise = config.trainer.optimizer_config.learning_rate.stepwise
  stepwise.boundaries = [step * scale for step in stepwise.boundaries]
  stepwise.values = [value / scale for value in stepwise.values]
  return config


@exp_factory.register_config_factory(experiment_names.TINY)
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
      task=maskformer_cfg.MaskFormerTask(
          model=model,
          train_data=maskformer_cfg.DataConfig(
              is_training=True, global_batch_size=8,
              output_size=output_size, num_segment_slots=num_segment_slots),
          validation_data=maskformer_cfg.DataConfig(
              is_training=False, global_batch_size=8, drop_remainder=False,
              output_size=output_size, num_segment_slots=num_segment_slots),
          losses=maskformer_cfg.Losses(no_object_weight=0.1),
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
