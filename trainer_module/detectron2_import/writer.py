"""Writes a converted model: TF checkpoint, `params.yaml`, SavedModel.

The checkpoint is `tf.train.Checkpoint(**model.checkpoint_items)` saved as
`DIR/ckpt-1` (with the `DIR/checkpoint` index), which the MaskFormer task's
`initialize()` restores with `init_checkpoint: DIR` and
`init_checkpoint_modules: all` (the whole model) or `backbone`. `params.yaml`
is the experiment `maskformer_coco_panoptic_d2` with the converted model's
architecture, input size and inference thresholds and that init checkpoint.
"""

import os
from typing import Optional

import tensorflow as tf
import tf_keras

from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import train_utils
from trainer_module import export
from trainer_module import raw_outputs
from trainer_module import registry_imports
from trainer_module.detectron2_import import converter
from trainer_module.detectron2_import import detectron2_config
from trainer_module.detectron2_import import detectron2_mapping
from trainer_module.configs import maskformer_detectron2
from trainer_module.modeling import factory

CHECKPOINT_PREFIX = 'ckpt'
SAVED_MODEL_DIR = 'saved_model'


def write_checkpoint(modules, output_dir: str) -> str:
  """Saves `tf.train.Checkpoint(**modules)` in `output_dir`; its prefix."""
  tf.io.gfile.makedirs(output_dir)
  return tf.train.Checkpoint(**modules).save(
      os.path.join(output_dir, CHECKPOINT_PREFIX))


def experiment_config(settings: detectron2_config.Detectron2Settings,
                      init_checkpoint: str,
                      init_checkpoint_modules: str = 'all'
                      ) -> cfg.ExperimentConfig:
  """`maskformer_coco_panoptic_d2` with the converted model's settings."""
  params = exp_factory.get_exp_config(maskformer_detectron2.EXPERIMENT)
  size = settings.model.input_size[0]
  params.task.model = settings.model
  for data in (params.task.train_data, params.task.validation_data):
    data.output_size = size
    # Every target slot must be matchable to a query.
    data.num_segment_slots = min(data.num_segment_slots,
                                 settings.model.num_queries)
  params.task.losses.no_object_weight = settings.no_object_weight
  params.task.losses.mask_weight = settings.mask_weight
  params.task.losses.dice_weight = settings.dice_weight
  params.task.evaluation.object_mask_threshold = settings.object_mask_threshold
  params.task.evaluation.overlap_threshold = settings.overlap_threshold
  params.task.init_checkpoint = init_checkpoint
  params.task.init_checkpoint_modules = init_checkpoint_modules
  return params


def _serving_model(model: tf_keras.Model, settings) -> tf_keras.Model:
  """A copy of `model` without deep supervision (the serving path)."""
  model_config = settings.model.replace(deep_supervision=False)
  size = model_config.input_size[0]
  with converter.float32_policy():
    serving = factory.build_maskformer_model(model_config)
    serving(tf.zeros([1, size, size, 3]), training=False)
  source = detectron2_mapping.variable_keys(model.checkpoint_items)
  target = detectron2_mapping.variable_keys(serving.checkpoint_items)
  for key, variable in target.items():
    variable.assign(source[key])
  return serving


def write_saved_model(converted: converter.Converted, export_dir: str,
                      transform_output_dir: Optional[str]) -> str:
  """The SavedModel: the pipeline's signatures (with a transform graph) and
  `raw_outputs`.

  Args:
    converted: The converted model and its settings.
    export_dir: Where to write the SavedModel.
    transform_output_dir: A tf.Transform output at the model's input size
      (the pipeline's `transform_graph`); None writes `raw_outputs` only.
  """
  settings = converted.settings
  size = settings.model.input_size[0]
  if transform_output_dir is None:
    module = raw_outputs.RawOutputsModule(
        converted.model, size, settings.pixel_mean, settings.pixel_std)
    signatures = module.signatures()
  else:
    module = export.PanopticServingModule(
        _serving_model(converted.model, settings), transform_output_dir,
        object_mask_threshold=settings.object_mask_threshold,
        overlap_threshold=settings.overlap_threshold)
    module.raw_model_variables = list(converted.model.variables)
    module.raw_outputs = raw_outputs.raw_outputs_function(
        converted.model, size, settings.pixel_mean, settings.pixel_std)
    signatures = module.signatures()
    signatures[raw_outputs.RAW_OUTPUTS] = module.raw_outputs
  tf.saved_model.save(module, export_dir, signatures=signatures)
  return export_dir


def write_all(converted: converter.Converted, output_dir: str,
              transform_output_dir: Optional[str]) -> str:
  """Checkpoint + params.yaml + DIR/saved_model; returns the checkpoint."""
  prefix = write_checkpoint(converted.model.checkpoint_items, output_dir)
  train_utils.serialize_config(
      experiment_config(converted.settings, output_dir), output_dir)
  write_saved_model(converted, os.path.join(output_dir, SAVED_MODEL_DIR),
                    transform_output_dir)
  return prefix
