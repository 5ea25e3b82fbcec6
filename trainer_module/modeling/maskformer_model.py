"""MaskFormer model (Cheng et al. 2021) as a Keras model."""

from typing import Any, Dict, Mapping, Optional

import tensorflow as tf
import tf_keras

from trainer_module.modeling import heads as heads_lib
from trainer_module.modeling import pixel_decoder as pixel_decoder_lib
from trainer_module.modeling import transformer_decoder as decoder_lib


class MaskFormer(tf_keras.Model):
  """Backbone → pixel decoder → transformer decoder → class/mask heads.

  Outputs (NHWC, float32):
    class_logits: [B, Q, K + 1] of the last decoder layer.
    mask_logits: [B, H/4, W/4, Q] of the last decoder layer.
    aux_class_logits: [L - 1, B, Q, K + 1] of the other decoder layers
      (with deep supervision only).
    aux_mask_logits: [L - 1, B, H/4, W/4, Q] (with deep supervision only).
  """

  def __init__(self,
               backbone: tf_keras.Model,
               pixel_decoder: pixel_decoder_lib.TransformerEncoderPixelDecoder,
               transformer_decoder: decoder_lib.TransformerDecoder,
               heads: heads_lib.MaskFormerHeads,
               deep_supervision: bool = True,
               **kwargs):
    super().__init__(**kwargs)
    self.backbone = backbone
    self.pixel_decoder = pixel_decoder
    self.transformer_decoder = transformer_decoder
    self.heads = heads
    self._deep_supervision = deep_supervision

  # The model (TFMG backbone included) has no tensor-dependent Python control
  # flow, so AutoGraph conversion is skipped: it only slows down tracing (about
  # a minute of CPU per trace on a small machine).
  @tf.autograph.experimental.do_not_convert
  def call(self, images: tf.Tensor,
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    """Predicts class and mask logits for normalised [B, H, W, 3] images."""
    return self._forward(images, training)[0]

  @tf.autograph.experimental.do_not_convert
  def endpoints(self, images: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The inference outputs and every intermediate (NHWC, no dropout).

    For comparisons with the reference implementation's intermediates:
    the `call` outputs plus `res2`..`res5` (backbone), `input_projection`
    [B, h, w, C] (the encoder input), `position` [h·w, C] (sine encoding),
    `encoder_output` [B, h·w, C] (the decoder's memory), `mask_features`
    [B, H/4, W/4, D] and `decoder_outputs` [L, B, Q, C] (after the final
    LayerNorm), where h, w are the res5 size.
    """
    return self._forward(images, training=False, with_endpoints=True)[1]

  def _forward(self, images: tf.Tensor, training: Optional[bool],
               with_endpoints: bool = False):
    """(outputs, endpoints or None) of the model on `images`."""
    features = self.backbone(images, training=training)
    mask_features, memory, memory_position, *projected = self.pixel_decoder(
        features, training=training, return_input_projection=with_endpoints)
    queries = self.transformer_decoder(memory, memory_position,
                                       training=training)
    if not self._deep_supervision:
      queries = queries[-1:]
    outputs = self._predict(queries, mask_features)
    if not with_endpoints:
      return outputs, None
    endpoints = {f'res{level}': features[str(level)] for level in range(2, 6)}
    endpoints.update(outputs, input_projection=projected[0],
                     position=memory_position, encoder_output=memory,
                     mask_features=mask_features, decoder_outputs=queries)
    return outputs, endpoints

  def _predict(self, queries: tf.Tensor,
               mask_features: tf.Tensor) -> Dict[str, tf.Tensor]:
    """Class and mask logits of the decoder outputs `queries` [L, B, Q, C]."""
    class_logits, mask_logits = self.heads(queries, mask_features)
    num_aux = class_logits.shape[0] - 1
    # tf.split, not slicing: the gradient of a slice writes a zero tensor of
    # the whole [L, B, H/4, W/4, Q] stack per slice, that of a split is one
    # concatenation.
    aux_class_logits, final_class_logits = tf.split(class_logits,
                                                    [num_aux, 1])
    aux_mask_logits, final_mask_logits = tf.split(mask_logits, [num_aux, 1])
    outputs = {
        'class_logits': tf.squeeze(final_class_logits, 0),
        'mask_logits': tf.squeeze(final_mask_logits, 0),
    }
    if self._deep_supervision:
      outputs['aux_class_logits'] = aux_class_logits
      outputs['aux_mask_logits'] = aux_mask_logits
    return outputs

  @property
  def checkpoint_items(self) -> Mapping[str, tf.Module]:
    """Sub-modules that can be restored separately (e.g. 'backbone')."""
    return dict(backbone=self.backbone, pixel_decoder=self.pixel_decoder,
                transformer_decoder=self.transformer_decoder, heads=self.heads)

  def get_config(self) -> Dict[str, Any]:
    return dict(backbone=self.backbone, pixel_decoder=self.pixel_decoder,
                transformer_decoder=self.transformer_decoder, heads=self.heads,
                deep_supervision=self._deep_supervision)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    return cls(**config)
