"""MaskFormer panoptic segmentation task (TF Model Garden `base_task.Task`).

Losses follow the reference criterion at the input resolution S: the
Hungarian matching compares the stride-4 mask logits with the targets
subsampled by nearest neighbour (`segment_map[::4, ::4]`, PyTorch's legacy
`F.interpolate(mode='nearest')`), and the focal and dice losses compare the
matched queries' logits, upsampled bilinearly (half-pixel) to S, with the
full-resolution slot masks (`trainer_module.losses.maskformer_losses`).
Padded pixels are excluded from the matching and the losses, which the
reference does not do.

Evaluation runs the reference panoptic inference on mask logits upsampled to
S (or, with `evaluation.full_resolution=False`, at stride 4) and accumulates
COCO panoptic quality on the host with `trainer_module.evaluation`.
"""

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf
import tf_keras

from official.core import base_task
from official.core import task_factory
from schemas import load_categories
from trainer_module.configs import maskformer as maskformer_cfg
from trainer_module.dataloaders import maskformer_input
from trainer_module.evaluation import panoptic_quality
from trainer_module.losses.maskformer_losses import maskformer_losses
from trainer_module.modeling import factory
from trainer_module.ops.panoptic_inference import panoptic_inference
from trainer_module.tasks import init_checkpoint

LOSS_TERMS = ('loss_ce', 'loss_mask', 'loss_dice')
TOTAL_LOSS = 'total_loss'
# Validation-step outputs that `aggregate_logs` turns into the PQ state.
PQ_OUTPUT_KEYS = ('gt_category_mask', 'gt_instance_mask',
                  'pred_category_mask', 'pred_instance_mask')


def build_targets(labels: Mapping[str, tf.Tensor], num_segment_slots: int
                 ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Builds the per-slot targets at the input resolution.

  Args:
    labels: `segment_map` int [B, S, S] (slot or −1), `segment_classes` int
      [B, N] (class or −1) and `pixel_valid` int [B, S, S].
    num_segment_slots: N.

  Returns:
    slot_map: int32 [B, S, S], the slot masks (`slot_map == j`) in the
      criterion's slot-map form (no dense [B, S, S, N] masks).
    gt_valid: bool [B, N], slots with a class and at least one pixel (a
      segment can leave the image by an augmentation crop).
    pixel_valid: int32 [B, S, S].
  """
  slot_map = tf.cast(labels['segment_map'], tf.int32)
  batch_size = tf.shape(slot_map)[0]
  # Pixels per (image, slot); −1 (no slot) counts in an extra column 0.
  bins = (slot_map + 1 + (num_segment_slots + 1) *
          tf.range(batch_size)[:, tf.newaxis, tf.newaxis])
  pixel_counts = tf.reshape(
      tf.math.unsorted_segment_sum(tf.ones_like(bins), bins,
                                   batch_size * (num_segment_slots + 1)),
      [batch_size, num_segment_slots + 1])[:, 1:]
  gt_valid = tf.logical_and(labels['segment_classes'] >= 0, pixel_counts > 0)
  return slot_map, gt_valid, tf.cast(labels['pixel_valid'], tf.int32)


def _prediction_layers(model_outputs: Mapping[str, tf.Tensor]
                      ) -> List[Tuple[str, tf.Tensor, tf.Tensor]]:
  """(suffix, class logits, mask logits) of the final and auxiliary outputs.

  The final output's losses are named `loss_ce`, ...; those of auxiliary
  decoder layer i (first layer = 0) `loss_ce_i`, ... as in the reference.
  """
  layers = [('', model_outputs['class_logits'], model_outputs['mask_logits'])]
  if 'aux_class_logits' in model_outputs:
    # Unstacked, not indexed: the gradient of each index would be a zero
    # tensor of the whole stack.
    aux_class_logits = tf.unstack(model_outputs['aux_class_logits'])
    aux_mask_logits = tf.unstack(model_outputs['aux_mask_logits'])
    for i, (class_logits, mask_logits) in enumerate(
        zip(aux_class_logits, aux_mask_logits)):
      layers.append((f'_{i}', class_logits, mask_logits))
  return layers


@task_factory.register_task_cls(maskformer_cfg.MaskFormerTask)
class MaskFormerTask(base_task.Task):
  """Trains and evaluates MaskFormer for panoptic segmentation."""

  def __init__(self, params: maskformer_cfg.MaskFormerTask,
               logging_dir: Optional[str] = None,
               name: Optional[str] = None):
    maskformer_cfg.validate_task_config(params)
    super().__init__(params, logging_dir=logging_dir, name=name)
    self._categories = [
        {'id': int(category['id']), 'isthing': int(category['isthing'])}
        for category in load_categories()]
    self._category_ids = [category['id'] for category in self._categories]
    self._thing_class_mask = [category['isthing'] == 1
                              for category in self._categories]

  def build_model(self) -> tf_keras.Model:
    """Builds the MaskFormer model of `task_config.model`."""
    model_config = self.task_config.model
    input_specs = tf_keras.layers.InputSpec(
        shape=[None] + list(model_config.input_size))
    return factory.build_maskformer_model(model_config,
                                          input_specs=input_specs)

  def initialize(self, model: tf_keras.Model) -> None:
    """Restores `init_checkpoint` into the model (`init_checkpoint.py`).

    TFMG's trainer calls this when `model_dir` has no checkpoint, as its
    Controller is built: before the first training step. Raises ValueError
    naming the checkpoint when it is missing or does not fit the model.
    """
    if self.task_config.init_checkpoint:
      init_checkpoint.restore_init_checkpoint(
          model, self.task_config.init_checkpoint,
          self.task_config.init_checkpoint_modules)

  def build_inputs(self,
                   params: maskformer_cfg.DataConfig,
                   input_context: Optional[tf.distribute.InputContext] = None
                  ) -> tf.data.Dataset:
    """The (image, labels) dataset of `params` (see `maskformer_input`)."""
    return maskformer_input.build_dataset(params, input_context)

  def build_losses(self,
                   labels: Mapping[str, tf.Tensor],
                   model_outputs: Mapping[str, tf.Tensor],
                   aux_losses: Optional[List[tf.Tensor]] = None
                  ) -> Dict[str, tf.Tensor]:
    """Set-prediction losses of the final and every auxiliary output.

    Args:
      labels: Input labels (`segment_map`, `segment_classes`, `pixel_valid`).
      model_outputs: Model outputs (`class_logits`, `mask_logits` and, with
        deep supervision, `aux_class_logits`, `aux_mask_logits`).
      aux_losses: Extra losses to add, e.g. `model.losses`.

    Returns:
      Per-replica float32 scalars: `total_loss` = Σ over outputs of
      (class_weight·ce + mask_weight·mask + dice_weight·dice) + aux losses,
      and each unweighted term (`loss_ce`, `loss_mask`, `loss_dice` for the
      final output, `loss_ce_i`, ... for auxiliary decoder layer i).
    """
    loss_config = self.task_config.losses
    num_slots = labels['segment_classes'].shape[-1]
    slot_map, gt_valid, pixel_valid = build_targets(labels, num_slots)
    term_weights = {'loss_ce': loss_config.class_weight,
                    'loss_mask': loss_config.mask_weight,
                    'loss_dice': loss_config.dice_weight}
    losses = {}
    total_loss = tf.constant(0.0, tf.float32)
    for suffix, class_logits, layer_mask_logits in _prediction_layers(
        model_outputs):
      layer_losses = maskformer_losses(
          class_logits, layer_mask_logits, labels['segment_classes'],
          slot_map, gt_valid,
          no_object_weight=loss_config.no_object_weight,
          class_weight=loss_config.class_weight,
          mask_weight=loss_config.mask_weight,
          dice_weight=loss_config.dice_weight,
          pixel_valid=pixel_valid)
      for term, value in layer_losses.items():
        losses[term + suffix] = value
        total_loss += term_weights[term] * value
    if aux_losses:
      total_loss += tf.add_n([tf.cast(loss, tf.float32)
                              for loss in aux_losses])
    losses[TOTAL_LOSS] = total_loss
    return losses

  def build_metrics(self, training: bool = True
                   ) -> List[tf_keras.metrics.Metric]:
    """Means of the total loss and of every loss term."""
    del training
    names = [TOTAL_LOSS]
    model_config = self.task_config.model
    num_aux = (model_config.transformer_decoder.num_layers - 1
               if model_config.deep_supervision else 0)
    for suffix in [''] + [f'_{i}' for i in range(num_aux)]:
      names += [term + suffix for term in LOSS_TERMS]
    return [tf_keras.metrics.Mean(name, dtype=tf.float32) for name in names]

  def _update_loss_metrics(self, metrics: Optional[List[Any]],
                           losses: Mapping[str, tf.Tensor]) -> None:
    for metric in metrics or []:
      metric.update_state(losses[metric.name])

  # The steps have no tensor-dependent Python control flow (the matching's
  # loops are explicit tf.while_loops); skipping AutoGraph saves seconds of
  # tracing per output layer.
  @tf.autograph.experimental.do_not_convert
  def train_step(self,
                 inputs: Tuple[tf.Tensor, Mapping[str, tf.Tensor]],
                 model: tf_keras.Model,
                 optimizer: tf_keras.optimizers.Optimizer,
                 metrics: Optional[List[Any]] = None) -> Dict[str, tf.Tensor]:
    """Forward, losses, backward and update on one per-replica batch.

    The per-replica loss is divided by the number of replicas before the
    gradients are taken (the optimizer sums them over replicas), as in
    `base_task.Task.train_step`; logs and metrics hold the unscaled values.
    """
    images, labels = inputs
    num_replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tf.GradientTape() as tape:
      outputs = model(images, training=True)
      losses = self.build_losses(labels, outputs, aux_losses=model.losses)
      scaled_loss = losses[TOTAL_LOSS] / num_replicas
      # Under mixed_float16 TFMG wraps the optimizer to scale the loss.
      if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
        scaled_loss = optimizer.get_scaled_loss(scaled_loss)
    trainable_variables = model.trainable_variables
    gradients = tape.gradient(scaled_loss, trainable_variables)
    if isinstance(optimizer, tf_keras.mixed_precision.LossScaleOptimizer):
      gradients = optimizer.get_unscaled_gradients(gradients)
    optimizer.apply_gradients(list(zip(gradients, trainable_variables)))
    self._update_loss_metrics(metrics, losses)
    return {self.loss: losses[TOTAL_LOSS]}

  @tf.autograph.experimental.do_not_convert
  def validation_step(self,
                      inputs: Tuple[tf.Tensor, Mapping[str, tf.Tensor]],
                      model: tf_keras.Model,
                      metrics: Optional[List[Any]] = None
                     ) -> Dict[str, tf.Tensor]:
    """Losses and panoptic predictions of one per-replica batch.

    Returns:
      `loss` and the int32 [B, H, W] maps of `PQ_OUTPUT_KEYS` (ground truth
      and prediction, void outside the image) for `aggregate_logs`.
    """
    images, labels = inputs
    outputs = model(images, training=False)
    losses = self.build_losses(labels, outputs, aux_losses=model.losses)
    self._update_loss_metrics(metrics, losses)
    logs = {self.loss: losses[TOTAL_LOSS]}
    logs.update(self.panoptic_outputs(outputs, labels))
    return logs

  def panoptic_outputs(self, model_outputs: Mapping[str, tf.Tensor],
                       labels: Mapping[str, tf.Tensor]
                      ) -> Dict[str, tf.Tensor]:
    """Panoptic inference and the matching ground truth for PQ."""
    evaluation = self.task_config.evaluation
    mask_logits = model_outputs['mask_logits']
    pixel_valid = labels['pixel_valid']
    gt_category = labels['category_mask']
    gt_instance = labels['instance_mask']
    if not evaluation.full_resolution:
      stride = pixel_valid.shape[1] // mask_logits.shape[1]
      pixel_valid = pixel_valid[:, ::stride, ::stride]
      gt_category = gt_category[:, ::stride, ::stride]
      gt_instance = gt_instance[:, ::stride, ::stride]
    # Processing only the kept queries gives dynamic shapes, which XLA (and
    # so a TPU) cannot compile; elsewhere it is the same result, faster.
    on_tpu = isinstance(tf.distribute.get_strategy(),
                        (tf.distribute.TPUStrategy,
                         tf.distribute.experimental.TPUStrategy))
    panoptic = panoptic_inference(
        model_outputs['class_logits'], mask_logits,
        thing_class_mask=tf.constant(self._thing_class_mask, tf.bool),
        category_ids=tf.constant(self._category_ids, tf.int32),
        object_mask_threshold=evaluation.object_mask_threshold,
        overlap_threshold=evaluation.overlap_threshold,
        pixel_valid=pixel_valid,
        output_size=(tuple(pixel_valid.shape[1:3])
                     if evaluation.full_resolution
                     else None),
        kept_queries_only=not on_tpu)
    valid = tf.cast(pixel_valid, tf.bool)
    return {
        'gt_category_mask': tf.where(valid, tf.cast(gt_category, tf.int32), 0),
        'gt_instance_mask': tf.where(valid, tf.cast(gt_instance, tf.int32), 0),
        'pred_category_mask': panoptic['category_mask'],
        'pred_instance_mask': panoptic['instance_mask'],
    }

  def aggregate_logs(self, state: Optional[Any],
                     step_outputs: Mapping[str, Any]) -> Any:
    """Adds the PQ sums of a validation step's images to `state` (host).

    The state is a `panoptic_quality.PanopticQualityState`.
    """
    if state is None:
      state = panoptic_quality.PanopticQualityState.zeros(
          panoptic_quality.num_category_slots(self._categories))
    maps = []
    for key in PQ_OUTPUT_KEYS:
      # One tensor per local replica (a tuple) or a single tensor.
      per_replica = tf.nest.flatten(step_outputs[key])
      maps.append(np.concatenate([np.asarray(value)
                                  for value in per_replica]))
    for gt_category, gt_instance, pred_category, pred_instance in zip(*maps):
      state.merge(panoptic_quality.image_panoptic_quality_state(
          gt_category, gt_instance, pred_category, pred_instance,
          self._categories))
    return state

  def reduce_aggregated_logs(self, aggregated_logs: Any,
                             global_step: Optional[tf.Tensor] = None
                            ) -> Dict[str, float]:
    """PQ, SQ, RQ for all categories, things and stuff."""
    del global_step
    result = panoptic_quality.panoptic_quality_result(aggregated_logs,
                                                self._categories)
    return {name: value
            for name, value in panoptic_quality.metric_values(result).items()
            if not name.startswith('pq_class_')}
