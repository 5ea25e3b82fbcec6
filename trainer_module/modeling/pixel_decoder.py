"""MaskFormer transformer-encoder pixel decoder (FPN over res2..res5)."""

from typing import Mapping, Optional, Tuple

import tensorflow as tf
import tf_keras

from trainer_module.modeling import initializers
from trainer_module.modeling import position_embedding
from trainer_module.modeling import transformer_encoder

# Backbone endpoints consumed, from the coarsest (stride 32) to the finest.
FPN_LEVELS = ('5', '4', '3', '2')


def static_or_dynamic_shape(tensor: tf.Tensor) -> list:
  """Shape of `tensor` with Python ints where known, scalar tensors otherwise."""
  dynamic = tf.shape(tensor)
  return [dim if dim is not None else dynamic[i]
          for i, dim in enumerate(tensor.shape.as_list())]


def upsample_nearest_2x(features: tf.Tensor) -> tf.Tensor:
  """Nearest-neighbour 2× upsampling of NHWC features.

  The FPN levels are exactly 2× apart (inputs divide by 32). Unlike
  `tf.image.resize(..., NEAREST_NEIGHBOR)`, whose gradient
  (ResizeNearestNeighborGrad) has no XLA kernel, this compiles for training.
  """
  return tf.repeat(tf.repeat(features, 2, axis=1), 2, axis=2)


class GroupNormalization(tf_keras.layers.Layer):
  """Float32 GroupNorm over NHWC channels (PyTorch semantics).

  `tf_keras.layers.GroupNormalization` computes masked (weighted) moments
  with an all-ones mask, which XLA constant-folds for minutes at stride-4
  resolution; this layer uses plain moments.
  """

  def __init__(self, groups: int, epsilon: float = 1e-5, **kwargs):
    kwargs.setdefault('dtype', 'float32')
    super().__init__(**kwargs)
    self._groups = groups
    self._epsilon = epsilon

  def build(self, input_shape):
    channels = input_shape[-1]
    if channels % self._groups:
      raise ValueError(f'{channels} channels are not divisible into '
                       f'{self._groups} groups.')
    self.gamma = self.add_weight('gamma', shape=[channels],
                                 initializer='ones')
    self.beta = self.add_weight('beta', shape=[channels], initializer='zeros')
    super().build(input_shape)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    batch_size, height, width, channels = static_or_dynamic_shape(inputs)
    per_group = self.gamma.shape[0] // self._groups
    pixels = tf.reshape(inputs, [batch_size, -1, channels])

    def group_mean(values):
      # Over the pixels first (a reduction over the outer axis, which is
      # several times faster on CPU than one over axes 1, 2 and 4 of the
      # grouped [B, H, W, G, C/G] view), then over each group's channels;
      # the group's value repeated for its channels: [B, 1, C].
      channel_mean = tf.reduce_mean(values, axis=1)
      mean = tf.reduce_mean(
          tf.reshape(channel_mean, [batch_size, self._groups, per_group]),
          axis=2, keepdims=True)
      return tf.reshape(tf.repeat(mean, per_group, axis=2),
                        [batch_size, 1, channels])

    mean = group_mean(pixels)
    variance = group_mean(tf.math.squared_difference(pixels, mean))
    # (x - mean) / std · gamma + beta as one scale and shift per channel:
    # two passes over the activations instead of four.
    scale = tf.math.rsqrt(variance + self._epsilon) * self.gamma
    shift = self.beta - mean * scale
    return tf.reshape(pixels * scale + shift,
                      [batch_size, height, width, channels])

  def get_config(self):
    return dict(super().get_config(), groups=self._groups,
                epsilon=self._epsilon)


class ConvNorm(tf_keras.layers.Layer):
  """Detectron2-style Conv2d(bias=False) + float32 GroupNorm (+ ReLU)."""

  def __init__(self, filters: int, kernel_size: int, norm_groups: int,
               use_relu: bool,
               norm_epsilon: float = transformer_encoder.NORM_EPSILON,
               **kwargs):
    super().__init__(**kwargs)
    self._conv = tf_keras.layers.Conv2D(
        filters, kernel_size, padding='same', use_bias=False,
        kernel_initializer=initializers.c2_xavier_fill(), name='conv')
    self._norm = GroupNormalization(
        norm_groups, epsilon=norm_epsilon, name='norm')
    self._use_relu = use_relu

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    outputs = self._norm(self._conv(inputs))
    if self._use_relu:
      outputs = tf.nn.relu(outputs)
    return tf.cast(outputs, self.compute_dtype)


class TransformerEncoderPixelDecoder(tf_keras.layers.Layer):
  """res5 → 1×1 conv → transformer encoder → top of an FPN over res4..res2.

  Returns the stride-4 mask features and the encoder output (the transformer
  decoder's memory) together with its positional encoding.
  """

  def __init__(self, hidden_size: int, mask_dim: int, num_encoder_layers: int,
               num_heads: int, ffn_dim: int, dropout: float, norm_groups: int,
               norm_epsilon: float = transformer_encoder.NORM_EPSILON,
               **kwargs):
    super().__init__(**kwargs)
    self._hidden_size = hidden_size
    self._input_projection = tf_keras.layers.Conv2D(
        hidden_size, 1, kernel_initializer=initializers.c2_xavier_fill(),
        bias_initializer='zeros', name='input_projection')
    self._encoder = transformer_encoder.TransformerEncoder(
        num_encoder_layers, hidden_size, num_heads, ffn_dim, dropout,
        norm_epsilon, name='transformer_encoder')
    self._output_convs = {
        level: ConvNorm(hidden_size, 3, norm_groups, use_relu=True,
                        norm_epsilon=norm_epsilon,
                        name=f'output_conv_{level}')
        for level in FPN_LEVELS
    }
    self._lateral_convs = {
        level: ConvNorm(hidden_size, 1, norm_groups, use_relu=False,
                        norm_epsilon=norm_epsilon,
                        name=f'lateral_conv_{level}')
        for level in FPN_LEVELS[1:]
    }
    self._mask_features = tf_keras.layers.Conv2D(
        mask_dim, 3, padding='same',
        kernel_initializer=initializers.c2_xavier_fill(),
        bias_initializer='zeros', name='mask_features')

  def call(self, features: Mapping[str, tf.Tensor],
           training: Optional[bool] = None,
           return_input_projection: bool = False
           ) -> Tuple[tf.Tensor, ...]:
    """Runs the pixel decoder.

    Args:
      features: Backbone endpoints '2'..'5' (NHWC, strides 4..32).
      training: Whether dropout is active.
      return_input_projection: Also return the encoder input (for
        comparisons with the reference's intermediates).

    Returns:
      mask_features: [B, H/4, W/4, mask_dim] in the compute dtype.
      memory: float32 [B, H/32 · W/32, hidden] encoder output.
      memory_position: float32 [H/32 · W/32, hidden] positional encoding.
      input_projection: [B, H/32, W/32, hidden], the 1×1 projection of res5
        (only with `return_input_projection`).
    """
    projected = self._input_projection(features['5'])
    batch_size, height, width, _ = static_or_dynamic_shape(projected)
    position = position_embedding.sine_position_embedding(
        height, width, self._hidden_size // 2)
    position = tf.reshape(position, [-1, self._hidden_size])
    memory = self._encoder(
        tf.reshape(projected, [batch_size, -1, self._hidden_size]), position,
        training=training)
    encoded = tf.reshape(tf.cast(memory, self.compute_dtype),
                         [batch_size, height, width, self._hidden_size])
    outputs = self._output_convs['5'](encoded)
    for level in FPN_LEVELS[1:]:
      lateral = self._lateral_convs[level](features[level])
      top_down = upsample_nearest_2x(outputs)
      outputs = self._output_convs[level](lateral + tf.cast(top_down,
                                                            lateral.dtype))
    results = (self._mask_features(outputs), tf.cast(memory, tf.float32),
               position)
    if return_input_projection:
      results += (projected,)
    return results
