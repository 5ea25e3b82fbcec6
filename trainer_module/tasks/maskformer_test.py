"""Tests of the MaskFormer task: targets, losses, steps and PQ aggregation."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from official.core import exp_factory
from official.core import task_factory
from trainer_module import registry_imports
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples
from trainer_module.losses.maskformer_losses import maskformer_losses
from trainer_module.tasks import maskformer as maskformer_task

SIZE = 64
SLOTS = 8
BATCH = 2


def _experiment(**task_overrides):
  config = exp_factory.get_exp_config('maskformer_tiny')
  data = {'output_size': SIZE, 'num_segment_slots': SLOTS,
          'global_batch_size': BATCH}
  config.override({'task': {'model': {'input_size': [SIZE, SIZE, 3]},
                            'train_data': data, 'validation_data': data}})
  config.override({'task': task_overrides})
  return config


def _batch(seed=0):
  """(images, labels) of BATCH synthetic examples, as the eval pipeline."""
  rng = np.random.default_rng(seed)
  examples = [synthetic_examples.make_transformed_example(rng, SIZE, SLOTS)
              for _ in range(BATCH)]
  labels = {key: tf.constant(synthetic_examples.stack(examples, key), tf.int32)
            for key in maskformer_input.EVAL_LABEL_KEYS}
  images = maskformer_input.normalize_image(
      tf.constant(synthetic_examples.stack(examples, 'image')), labels['pixel_valid'])
  return images, labels


def test_targets_are_full_resolution_slot_masks():
  _, labels = _batch()
  segment_map = labels['segment_map'].numpy()
  classes = labels['segment_classes'].numpy()
  # Slot 2 keeps its class but loses its pixels (as after a crop); slot 0
  # keeps a single pixel that is not on the stride-4 grid, which must stay a
  # target (the matching's subsampled masks would lose it).
  segment_map[0][segment_map[0] == 2] = 0
  segment_map[1][segment_map[1] == 0] = 1
  segment_map[1, 5, 6] = 0
  labels = dict(labels, segment_map=tf.constant(segment_map))
  slot_map, gt_valid, pixel_valid = maskformer_task.build_targets(
      labels, SLOTS)
  expected_masks = np.stack([segment_map == j for j in range(SLOTS)], axis=-1)
  np.testing.assert_array_equal(slot_map, segment_map)
  np.testing.assert_array_equal(
      gt_valid, (classes >= 0) & expected_masks.any(axis=(1, 2)))
  assert not gt_valid[0, 2] and classes[0, 2] >= 0
  assert gt_valid[1, 0] and not np.any(segment_map[1, ::4, ::4] == 0)
  np.testing.assert_array_equal(pixel_valid, labels['pixel_valid'])


def test_losses_sum_every_decoder_output():
  config = _experiment(losses={'no_object_weight': 0.3})
  task = task_factory.get_task(config.task)
  num_layers = config.task.model.transformer_decoder.num_layers
  _, labels = _batch()
  rng = np.random.default_rng(1)
  queries = config.task.model.num_queries
  outputs = {
      'class_logits': rng.normal(size=[BATCH, queries, 134]),
      'mask_logits': rng.normal(size=[BATCH, SIZE // 4, SIZE // 4, queries]),
      'aux_class_logits': rng.normal(
          size=[num_layers - 1, BATCH, queries, 134]),
      'aux_mask_logits': rng.normal(
          size=[num_layers - 1, BATCH, SIZE // 4, SIZE // 4, queries]),
  }
  outputs = {k: tf.constant(v, tf.float32) for k, v in outputs.items()}
  losses = task.build_losses(labels, outputs)

  segment_map = labels['segment_map'].numpy()
  gt_masks = np.stack([segment_map == j for j in range(SLOTS)], -1)
  gt_valid = (labels['segment_classes'].numpy() >= 0) & gt_masks.any((1, 2))
  layers = [('', outputs['class_logits'], outputs['mask_logits'])] + [
      (f'_{i}', outputs['aux_class_logits'][i], outputs['aux_mask_logits'][i])
      for i in range(num_layers - 1)]
  expected_total = 0.0
  for suffix, class_logits, mask_logits in layers:
    expected = maskformer_losses(
        class_logits, mask_logits, labels['segment_classes'],
        gt_masks.astype(np.float32), gt_valid, no_object_weight=0.3,
        pixel_valid=labels['pixel_valid'])
    for term, value in expected.items():
      np.testing.assert_allclose(losses[term + suffix], value, rtol=1e-6)
    expected_total += (expected['loss_ce'] + 20.0 * expected['loss_mask'] +
                       expected['loss_dice'])
  np.testing.assert_allclose(losses['total_loss'], expected_total, rtol=1e-5)
  assert {m.name for m in task.build_metrics()} == set(losses)


@pytest.fixture(scope='module')
def jit_training():
  """A smaller tiny task, its model, optimizer and XLA-compiled train step.

  XLA compilation on CPU dominates the cost (minutes for maskformer_tiny on
  a busy 2-core machine), so the backbone and widths are reduced further; no
  learning-rate warm-up so that the first steps already update.
  """
  config = _experiment(model={
      'num_queries': 10, 'hidden_size': 32,
      'backbone': {'resnet': {'model_id': 10}},
      'pixel_decoder': {'mask_dim': 32, 'ffn_dim': 64, 'fpn_norm_groups': 8},
      'transformer_decoder': {'ffn_dim': 64}})
  config.trainer.optimizer_config.warmup.type = None
  task = task_factory.get_task(config.task)
  model = task.build_model()
  optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                    config.runtime)
  metrics = task.build_metrics()
  train_step = tf.function(
      lambda inputs: task.train_step(inputs, model, optimizer, metrics),
      jit_compile=True)
  return task, model, train_step, metrics


def test_xla_train_step_gives_finite_loss_and_updates(jit_training):
  _, model, train_step, metrics = jit_training
  inputs = _batch(seed=2)
  before = [v.numpy() for v in model.trainable_variables]
  logs = train_step(inputs)
  assert np.isfinite(logs['loss'].numpy())
  changed = [not np.array_equal(b, v.numpy())
             for b, v in zip(before, model.trainable_variables)]
  assert all(changed)
  results = {m.name: m.result().numpy() for m in metrics}
  assert {'loss_ce', 'loss_mask_0', 'loss_dice_0'} <= set(results)
  assert all(np.isfinite(value) for value in results.values())


def test_loss_decreases_when_overfitting_one_batch(jit_training):
  _, _, train_step, _ = jit_training
  inputs = _batch(seed=3)
  losses = [float(train_step(inputs)['loss']) for _ in range(20)]
  assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), losses


def test_validation_step_and_pq_aggregation():
  config = _experiment()
  task = task_factory.get_task(config.task)
  model = task.build_model()
  images, labels = _batch(seed=4)
  logs = task.validation_step((images, labels), model,
                              metrics=task.build_metrics(training=False))
  for key in maskformer_task.PQ_OUTPUT_KEYS:
    assert logs[key].shape == (BATCH, SIZE, SIZE)
  # The ground truth is void outside the image.
  padding = labels['pixel_valid'].numpy() == 0
  assert np.all(logs['gt_category_mask'].numpy()[padding] == 0)

  # Two "replicas", as the trainer hands them over: (tensor, tensor).
  step_outputs = {key: (logs[key], logs[key])
                  for key in maskformer_task.PQ_OUTPUT_KEYS}
  state = task.aggregate_logs(None, step_outputs)
  results = task.reduce_aggregated_logs(state)
  assert {'pq', 'sq', 'rq', 'pq_things', 'pq_stuff', 'rq_things',
          'sq_stuff'} <= set(results)
  assert all(0.0 <= value <= 1.0 for value in results.values())

  # A perfect prediction scores PQ = SQ = RQ = 1.
  perfect = dict(step_outputs,
                 pred_category_mask=step_outputs['gt_category_mask'],
                 pred_instance_mask=step_outputs['gt_instance_mask'])
  perfect_results = task.reduce_aggregated_logs(
      task.aggregate_logs(None, perfect))
  assert perfect_results['pq'] == pytest.approx(1.0)
  assert perfect_results['pq_things'] == pytest.approx(1.0)
  assert perfect_results['pq_stuff'] == pytest.approx(1.0)


def test_backbone_only_init_checkpoint(tmp_path):
  config = _experiment()
  source = task_factory.get_task(config.task).build_model()
  path = tf.train.Checkpoint(backbone=source.backbone).write(
      str(tmp_path / 'backbone'))
  config = _experiment(init_checkpoint=path,
                       init_checkpoint_modules='backbone')
  task = task_factory.get_task(config.task)
  model = task.build_model()
  assert not all(
      np.array_equal(restored.numpy(), original.numpy())
      for restored, original in zip(model.backbone.weights,
                                    source.backbone.weights))
  task.initialize(model)
  for restored, original in zip(model.backbone.weights,
                                source.backbone.weights):
    np.testing.assert_array_equal(restored.numpy(), original.numpy())


def test_bfloat16_policy_keeps_norms_and_losses_float32():
  tf_keras.mixed_precision.set_global_policy('mixed_bfloat16')
  try:
    config = _experiment()
    task = task_factory.get_task(config.task)
    model = task.build_model()
    optimizer = task.create_optimizer(config.trainer.optimizer_config,
                                      config.runtime)
    inputs = _batch(seed=5)
    outputs = model(inputs[0], training=True)
    logs = task.train_step(inputs, model, optimizer)
  finally:
    tf_keras.mixed_precision.set_global_policy('float32')
  assert all(value.dtype == tf.float32 for value in outputs.values())
  assert logs['loss'].dtype == tf.float32
  assert np.isfinite(logs['loss'].numpy())
  norm_types = (tf_keras.layers.LayerNormalization,
                tf_keras.layers.GroupNormalization)
  norms = [layer for layer in model.submodules
           if isinstance(layer, norm_types)]
  assert norms
  assert all(layer.compute_dtype == 'float32' for layer in norms)
  assert any(layer.compute_dtype == 'bfloat16' for layer in model.submodules
             if isinstance(layer, tf_keras.layers.Dense))
  assert all(variable.dtype == tf.float32 for variable in model.variables)
