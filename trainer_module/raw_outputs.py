"""The `raw_outputs` serving signature: the model's logits for uint8 images.

`raw_outputs(images)`: uint8 [B, S, S, 3] RGB → float32
  pred_logits [B, Q, K + 1], pred_masks [B, S/4, S/4, Q],
  aux_pred_logits [L − 1, B, Q, K + 1], aux_pred_masks [L − 1, B, S/4, S/4, Q]
(the last decoder layer and the other layers, as the original MaskFormer's
`pred_logits`, `pred_masks`, `aux_outputs`, in NHWC). The module normalises
with the original's pixel mean/std itself. With L = 1 (or no deep
supervision) the aux outputs have a leading size 0.
"""

from typing import Dict, Sequence

import tensorflow as tf
import tf_keras

RAW_OUTPUTS = 'raw_outputs'
IMAGES_INPUT = 'images'


def normalize_uint8(images: tf.Tensor, pixel_mean: Sequence[float],
                    pixel_std: Sequence[float]) -> tf.Tensor:
  """(x − mean) / std of 0..255 RGB images, float32."""
  return ((tf.cast(images, tf.float32) - tf.constant(pixel_mean, tf.float32))
          / tf.constant(pixel_std, tf.float32))


def raw_outputs_function(model: tf_keras.Model, image_size: int,
                         pixel_mean: Sequence[float],
                         pixel_std: Sequence[float]
                         ) -> tf.types.experimental.GenericFunction:
  """The `raw_outputs` tf.function of `model` (float32, built for S × S)."""

  def raw_outputs(images: tf.Tensor) -> Dict[str, tf.Tensor]:
    outputs = model(normalize_uint8(images, pixel_mean, pixel_std),
                    training=False)
    logits, masks = outputs['class_logits'], outputs['mask_logits']
    aux_logits = outputs.get('aux_class_logits')
    aux_masks = outputs.get('aux_mask_logits')
    if aux_logits is None:
      aux_logits = tf.zeros(tf.concat([[0], tf.shape(logits)], 0))
      aux_masks = tf.zeros(tf.concat([[0], tf.shape(masks)], 0))
    return {'pred_logits': logits, 'pred_masks': masks,
            'aux_pred_logits': aux_logits, 'aux_pred_masks': aux_masks}

  return tf.function(
      raw_outputs, autograph=False,
      input_signature=[tf.TensorSpec([None, image_size, image_size, 3],
                                     tf.uint8, name=IMAGES_INPUT)])


class RawOutputsModule(tf.Module):
  """A SavedModel root with only the `raw_outputs` signature."""

  def __init__(self, model: tf_keras.Model, image_size: int,
               pixel_mean: Sequence[float], pixel_std: Sequence[float]):
    super().__init__(name='maskformer_raw_outputs')
    self.model_variables = list(model.variables)
    self.raw_outputs = raw_outputs_function(model, image_size, pixel_mean,
                                            pixel_std)

  def signatures(self):
    # The function (it has an input signature): traced once, by `save`.
    return {RAW_OUTPUTS: self.raw_outputs}
