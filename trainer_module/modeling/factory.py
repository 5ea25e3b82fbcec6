"""Builds the MaskFormer model from its config."""

from typing import Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling import backbones
from trainer_module.configs import maskformer_model as maskformer_cfg
from trainer_module.modeling import heads
from trainer_module.modeling import maskformer_model
from trainer_module.modeling import pixel_decoder
from trainer_module.modeling import transformer_decoder
# Registers the `detectron2_resnet` backbone with TFMG's backbone factory.
from trainer_module.modeling.backbones import detectron2_resnet  # noqa: F401


def build_maskformer_model(
    model_config: maskformer_cfg.MaskFormerModel,
    input_specs: Optional[tf_keras.layers.InputSpec] = None,
    l2_regularizer: Optional[tf_keras.regularizers.Regularizer] = None,
) -> maskformer_model.MaskFormer:
  """Validates `model_config` and builds an (unbuilt) MaskFormer model.

  The backbone comes from TFMG's backbone factory and is `model.backbone`,
  so a task can restore it alone (`init_checkpoint_modules='backbone'`).
  Layers take the global Keras mixed-precision policy at build time.

  Args:
    model_config: The model config.
    input_specs: Backbone input spec; defaults to [None] + input_size.
    l2_regularizer: Optional backbone kernel regularizer.

  Raises:
    ValueError: If the config is invalid (the message names the field).
  """
  maskformer_cfg.validate_model_config(model_config)
  if input_specs is None:
    input_specs = tf_keras.layers.InputSpec(
        shape=[None] + list(model_config.input_size))
  # Functional construction would AutoGraph-convert every TFMG block (about a
  # minute of CPU); the blocks have no tensor-dependent control flow.
  build_backbone = tf.autograph.experimental.do_not_convert(
      backbones.factory.build_backbone)
  backbone = build_backbone(
      input_specs=input_specs,
      backbone_config=model_config.backbone,
      norm_activation_config=model_config.norm_activation,
      l2_regularizer=l2_regularizer)

  pixel_config = model_config.pixel_decoder
  decoder_config = model_config.transformer_decoder
  return maskformer_model.MaskFormer(
      backbone=backbone,
      pixel_decoder=pixel_decoder.TransformerEncoderPixelDecoder(
          hidden_size=model_config.hidden_size,
          mask_dim=pixel_config.mask_dim,
          num_encoder_layers=pixel_config.num_encoder_layers,
          num_heads=pixel_config.num_heads,
          ffn_dim=pixel_config.ffn_dim,
          dropout=pixel_config.dropout,
          norm_groups=pixel_config.fpn_norm_groups,
          norm_epsilon=pixel_config.norm_epsilon,
          name='pixel_decoder'),
      transformer_decoder=transformer_decoder.TransformerDecoder(
          num_layers=decoder_config.num_layers,
          num_queries=model_config.num_queries,
          hidden_size=model_config.hidden_size,
          num_heads=decoder_config.num_heads,
          ffn_dim=decoder_config.ffn_dim,
          dropout=decoder_config.dropout,
          norm_epsilon=decoder_config.norm_epsilon,
          name='transformer_decoder'),
      heads=heads.MaskFormerHeads(
          num_classes=model_config.num_classes,
          hidden_size=model_config.hidden_size,
          mask_dim=pixel_config.mask_dim,
          name='heads'),
      deep_supervision=model_config.deep_supervision,
      name='maskformer')
