"""Tests of the task's `init_checkpoint`: a pretrained backbone, or a clear
error before training starts.

The checkpoints are written as TF Model Garden's image-classification
trainer writes them (`official.core.base_trainer.Trainer`:
`tf.train.Checkpoint(global_step=..., model=..., optimizer=...,
**model.checkpoint_items)` saved by a `tf.train.CheckpointManager`), from a
TFMG `ImageClassificationModel` with a tiny ResNet.
"""

import json
import pathlib
import types

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from official.vision.configs import backbones
from official.vision.configs import image_classification as classification_cfg
from official.vision.modeling import factory as tfmg_factory
from trainer_module import registry_imports
from trainer_module.run_fn import build_experiment_config
from trainer_module.run_fn import run_fn
from trainer_module.dataloaders import synthetic_examples
from trainer_module.tasks import init_checkpoint

SIZE = 64
SLOTS = 8
# maskformer_tiny's backbone, with the reference's frozen batch norm.
DEPTH_MULTIPLIER = 0.25


def _resnet(depth_multiplier=DEPTH_MULTIPLIER) -> backbones.Backbone:
  return backbones.Backbone(
      type='resnet',
      resnet=backbones.ResNet(model_id=18, depth_multiplier=depth_multiplier,
                              bn_trainable=False))


def _task_overrides(**task):
  data = {'output_size': SIZE, 'num_segment_slots': SLOTS,
          'global_batch_size': 2}
  overrides = {'model': {'input_size': [SIZE, SIZE, 3],
                         'backbone': _resnet().as_dict()},
               'train_data': data, 'validation_data': data}
  overrides.update(task)
  return overrides


def _experiment(**task):
  config = exp_factory.get_exp_config('maskformer_tiny')
  config.override({'task': _task_overrides(**task)})
  return config


def write_classification_checkpoint(directory: pathlib.Path,
                                    depth_multiplier=DEPTH_MULTIPLIER,
                                    seed=0) -> tf_keras.Model:
  """Saves an ImageNet-style classifier as TFMG's trainer does; returns it.

  Every variable (batch-norm statistics included) gets a random value, so
  that a restored value can only come from the checkpoint.
  """
  model = tfmg_factory.build_classification_model(
      input_specs=tf_keras.layers.InputSpec(shape=[None, SIZE, SIZE, 3]),
      model_config=classification_cfg.ImageClassificationModel(
          num_classes=10, input_size=[SIZE, SIZE, 3],
          backbone=_resnet(depth_multiplier)))
  rng = np.random.default_rng(seed)
  for variable in model.weights:
    variable.assign(rng.uniform(0.5, 1.5, variable.shape).astype(
        variable.dtype.as_numpy_dtype))
  global_step = tf.Variable(28080, dtype=tf.int64)
  checkpoint = tf.train.Checkpoint(
      global_step=global_step, model=model,
      optimizer=tf_keras.optimizers.SGD(0.1), **model.checkpoint_items)
  manager = tf.train.CheckpointManager(checkpoint, str(directory),
                                       max_to_keep=1)
  manager.save(checkpoint_number=global_step)
  return model


# Each checkpoint is written once per module (building the classifier costs
# seconds) and only read by the tests.


@pytest.fixture(scope='module')
def imagenet_checkpoint(tmp_path_factory):
  """(directory, classifier) of a checkpoint whose backbone fits the task."""
  directory = tmp_path_factory.mktemp('init_checkpoint') / 'imagenet'
  return directory, write_classification_checkpoint(directory)


@pytest.fixture(scope='module')
def wide_checkpoint(tmp_path_factory) -> pathlib.Path:
  """A checkpoint of a wider ResNet: same variables, other shapes."""
  directory = tmp_path_factory.mktemp('init_checkpoint') / 'wide'
  write_classification_checkpoint(directory, depth_multiplier=0.5)
  return directory


def test_tfmg_classification_checkpoint_restores_the_backbone_only(
    imagenet_checkpoint):
  directory, source = imagenet_checkpoint
  # A directory gives its latest checkpoint (TFMG's model_dir layout).
  task = task_factory.get_task(
      _experiment(init_checkpoint=str(directory)).task)
  model = task.build_model()
  model(tf.zeros([1, SIZE, SIZE, 3]), training=False)  # creates every variable
  backbone_ids = {id(variable) for variable in model.backbone.weights}
  others = [variable for variable in model.weights
            if id(variable) not in backbone_ids]
  others_before = [variable.numpy() for variable in others]
  assert len(model.backbone.weights) == len(source.backbone.weights)
  assert others

  task.initialize(model)

  reader = tf.train.load_checkpoint(str(directory))
  for restored, original in zip(model.backbone.weights,
                                source.backbone.weights):
    assert restored.shape == original.shape, restored.name
    np.testing.assert_array_equal(restored.numpy(), original.numpy(),
                                  err_msg=restored.name)
  # The values are the checkpoint's: read back through its `backbone` key.
  backbone_keys = [name for name in reader.get_variable_to_shape_map()
                   if name.startswith('backbone/')]
  assert len(backbone_keys) == len(source.backbone.weights)
  checkpoint_values = sorted(float(np.sum(reader.get_tensor(name)))
                             for name in backbone_keys)
  restored_values = sorted(float(np.sum(variable.numpy()))
                           for variable in model.backbone.weights)
  np.testing.assert_allclose(restored_values, checkpoint_values, rtol=1e-6)
  for variable, before in zip(others, others_before):
    np.testing.assert_array_equal(variable.numpy(), before,
                                  err_msg=variable.name)


def test_checkpoint_prefix_is_accepted(imagenet_checkpoint):
  directory, _ = imagenet_checkpoint
  prefix = str(directory / 'ckpt-28080')
  assert init_checkpoint.resolve_init_checkpoint(prefix) == prefix
  assert init_checkpoint.resolve_init_checkpoint(str(directory)) == prefix


@pytest.mark.parametrize('make_path, message', [
    (lambda tmp: tmp / 'no_such_ckpt-1', 'does not exist'),
    (lambda tmp: tmp, 'directory without a checkpoint'),
])
def test_missing_checkpoint_fails_naming_it(tmp_path, make_path, message):
  path = str(make_path(tmp_path))
  with pytest.raises(ValueError, match=message) as error:
    init_checkpoint.resolve_init_checkpoint(path)
  assert path in str(error.value)


def test_mismatched_checkpoint_fails_naming_it(tmp_path, wide_checkpoint):
  task = task_factory.get_task(
      _experiment(init_checkpoint=str(wide_checkpoint)).task)
  with pytest.raises(ValueError, match='does not fit the model') as error:
    task.initialize(task.build_model())
  assert str(wide_checkpoint / 'ckpt-28080') in str(error.value)
  # A checkpoint without a backbone.
  prefix = tf.train.Checkpoint(step=tf.Variable(1)).write(
      str(tmp_path / 'other' / 'ckpt'))
  task = task_factory.get_task(_experiment(init_checkpoint=prefix).task)
  with pytest.raises(ValueError, match='does not fit the model'):
    task.initialize(task.build_model())


def _fn_args(tmp_path: pathlib.Path, init_checkpoint: str):
  synthetic_examples.write_transformed_records(tmp_path / 'train.gz', 2, SIZE, SLOTS)
  params_override = {'task': _task_overrides(),
                     'trainer': {'steps_per_loop': 1,
                                 'checkpoint_interval': 1}}
  return types.SimpleNamespace(
      custom_config={'experiment': 'maskformer_tiny',
                     'params_override': json.dumps(params_override),
                     'materialized': True,
                     'init_checkpoint': init_checkpoint},
      train_files=[str(tmp_path / 'train.gz')],
      eval_files=[str(tmp_path / 'train.gz')],
      train_steps=2, eval_steps=1,
      model_run_dir=str(tmp_path / 'model_run'),
      serving_model_dir=str(tmp_path / 'serving'),
      transform_output=None)


@pytest.mark.parametrize('checkpoint', ['missing', 'mismatched'])
def test_run_fn_fails_before_training(tmp_path, checkpoint, request):
  if checkpoint == 'missing':
    path, message = str(tmp_path / 'nowhere' / 'ckpt-1'), 'does not exist'
  else:
    path = str(request.getfixturevalue('wide_checkpoint'))
    message = 'does not fit the model'
  fn_args = _fn_args(tmp_path, path)
  params = build_experiment_config(fn_args)
  assert params.task.init_checkpoint == path
  assert not params.task.model.backbone.resnet.bn_trainable
  with pytest.raises(ValueError, match=message):
    run_fn(fn_args)
  # No training step ran: TFMG writes no checkpoint before its first loop.
  assert not tf.train.latest_checkpoint(str(tmp_path / 'model_run'))
