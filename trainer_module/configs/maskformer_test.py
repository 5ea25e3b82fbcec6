"""Tests of the MaskFormer experiment configs and their validation."""

import pytest

from official.core import exp_factory
from official.core import task_factory
from official.modeling import hyperparams
from trainer_module import optimization
from trainer_module import registry_imports
from trainer_module.configs import maskformer as maskformer_cfg


def _tiny():
  return exp_factory.get_exp_config('maskformer_tiny')


def test_reference_experiment_matches_the_paper_setup():
  config = exp_factory.get_exp_config('maskformer_coco_panoptic')
  config.validate()
  task = config.task
  assert task.model.num_classes == 133
  assert task.model.num_queries == 100
  assert list(task.model.input_size) == [640, 640, 3]
  assert task.model.backbone.resnet.model_id == 50
  assert task.model.pixel_decoder.num_encoder_layers == 6
  assert task.model.transformer_decoder.num_layers == 6
  assert task.model.deep_supervision
  assert task.train_data.global_batch_size == 64
  assert task.losses.no_object_weight == pytest.approx(0.1)
  assert (task.losses.class_weight, task.losses.mask_weight,
          task.losses.dice_weight) == (1.0, 20.0, 1.0)
  assert task.init_checkpoint_modules == 'backbone'
  # Frozen batch norm needs pretrained statistics: TFMG's ImageNet ResNet-50.
  assert not task.model.backbone.resnet.bn_trainable
  assert task.init_checkpoint == (
      'gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080')
  maskformer_cfg.validate_task_config(task)
  assert config.runtime.mixed_precision_dtype == 'bfloat16'
  assert config.trainer.train_steps == 554_400

  optimization_config = config.trainer.optimizer_config
  assert optimization_config.optimizer.type == optimization.OPTIMIZER_TYPE
  adamw = optimization_config.optimizer.get()
  assert adamw.weight_decay_rate == pytest.approx(1e-4)
  assert adamw.lr_multiplier == pytest.approx(0.1)
  assert adamw.global_clipnorm == pytest.approx(0.01)
  assert adamw.gradient_clip_norm == 0.0
  schedule = optimization_config.learning_rate.get()
  assert list(schedule.boundaries) == [369_600]
  assert schedule.values == pytest.approx([1e-4, 1e-5])


def test_tiny_experiment_is_consistent():
  config = _tiny()
  config.validate()
  maskformer_cfg.validate_task_config(config.task)
  task = config.task
  assert task.train_data.output_size == task.model.input_size[0] == 128
  assert task.train_data.num_segment_slots <= task.model.num_queries
  assert task.train_data.is_training and not task.validation_data.is_training
  assert task.train_data.drop_remainder
  assert task.train_data.shuffle_buffer_size <= 64
  assert config.runtime.mixed_precision_dtype is None
  # Trained from scratch: trainable batch norm, no checkpoint.
  assert task.model.backbone.resnet.bn_trainable
  assert not task.init_checkpoint


def test_frozen_batch_norm_without_init_checkpoint_is_refused():
  config = _tiny()
  config.override({'task': {'model': {'backbone': {'resnet': {
      'bn_trainable': False}}}}})
  with pytest.raises(ValueError, match=r'init_checkpoint=.*'
                     r'model\.backbone\.resnet\.bn_trainable=False'):
    maskformer_cfg.validate_task_config(config.task)
  config = exp_factory.get_exp_config('maskformer_coco_panoptic')
  config.override({'task': {'init_checkpoint': ''}})
  with pytest.raises(ValueError, match='init_checkpoint'):
    task_factory.get_task(config.task)
  config.override({'task': {'init_checkpoint': '/converted/r50'}})
  maskformer_cfg.validate_task_config(config.task)


def test_params_override_reaches_nested_fields():
  config = _tiny()
  config.override({'task': {'losses': {'no_object_weight': 0.02},
                            'train_data': {'global_batch_size': 4}},
                   'trainer': {'train_steps': 7}})
  config = hyperparams.override_params_dict(
      config, 'task.model.num_queries=24,trainer.optimizer_config.optimizer.'
      'adamw_lr_multiplier.lr_multiplier=0.5', is_strict=True)
  assert config.task.losses.no_object_weight == pytest.approx(0.02)
  assert config.task.train_data.global_batch_size == 4
  assert config.trainer.train_steps == 7
  assert config.task.model.num_queries == 24
  assert config.trainer.optimizer_config.optimizer.get().lr_multiplier == 0.5


def test_unknown_override_key_fails():
  with pytest.raises(KeyError):
    _tiny().override({'task': {'losses': {'no_such_weight': 1.0}}})


@pytest.mark.parametrize('override, field', [
    ({'train_data': {'num_segment_slots': 21}}, 'train_data.num_segment_slots'),
    ({'model': {'backbone': {'type': 'spinenet'}}}, 'backbone.type'),
    ({'model': {'input_size': [100, 100, 3]},
      'train_data': {'output_size': 100},
      'validation_data': {'output_size': 100}}, 'input_size'),
    ({'validation_data': {'output_size': 96}}, 'validation_data.output_size'),
    ({'model': {'num_classes': 80}}, 'model.num_classes'),
    ({'losses': {'no_object_weight': 0.0}}, 'losses.no_object_weight'),
    ({'train_data': {'aug_crop_size_range': [600, 384]}},
     'train_data.aug_crop_size_range'),
    ({'train_data': {'compression_type': 'BZ2'}},
     'train_data.compression_type'),
    ({'evaluation': {'overlap_threshold': 1.5}},
     'evaluation.overlap_threshold'),
    ({'init_checkpoint_modules': 'decoder'}, 'init_checkpoint_modules'),
])
def test_invalid_config_fails_naming_the_field(override, field):
  config = _tiny()
  config.override({'task': override})
  with pytest.raises(ValueError, match=field.replace('.', r'\.')):
    task_factory.get_task(config.task)


def test_1344_experiment_scales_the_schedule_with_its_batch():
  reference = exp_factory.get_exp_config('maskformer_coco_panoptic')
  config = exp_factory.get_exp_config('maskformer_coco_panoptic_1344')
  config.validate()
  assert config.task.train_data.global_batch_size == 16
  assert config.trainer.train_steps == 4 * 554_400
  stepwise = config.trainer.optimizer_config.learning_rate.stepwise
  assert stepwise.boundaries == [4 * 369_600]
  assert stepwise.values == pytest.approx([2.5e-5, 2.5e-6])
  # The same images seen as the original's 64 x 554,400.
  assert (config.task.train_data.global_batch_size *
          config.trainer.train_steps) == (
              reference.task.train_data.global_batch_size *
              reference.trainer.train_steps)
  assert reference.trainer.optimizer_config.learning_rate.stepwise.values == (
      pytest.approx([1e-4, 1e-5]))
