"""Post-norm transformer encoder (DETR style) used by the pixel decoder."""

from typing import Optional

import tensorflow as tf
import tf_keras

from trainer_module.modeling import attention
from trainer_module.modeling import initializers

# PyTorch's LayerNorm/GroupNorm epsilon, as in the reference.
NORM_EPSILON = 1e-5


def layer_norm(name: str, epsilon: float = NORM_EPSILON
              ) -> tf_keras.layers.LayerNormalization:
  """A float32 LayerNormalization (default: the reference epsilon)."""
  return tf_keras.layers.LayerNormalization(
      epsilon=epsilon, dtype='float32', name=name)


class FeedForward(tf_keras.layers.Layer):
  """Linear → ReLU → dropout → Linear with the reference initialisation."""

  def __init__(self, hidden_size: int, ffn_dim: int, dropout: float, **kwargs):
    super().__init__(**kwargs)
    self._linear1 = tf_keras.layers.Dense(
        ffn_dim, activation='relu',
        kernel_initializer=initializers.xavier_uniform(hidden_size, ffn_dim),
        bias_initializer=initializers.torch_linear_default(hidden_size),
        name='linear1')
    self._dropout = tf_keras.layers.Dropout(dropout)
    self._linear2 = tf_keras.layers.Dense(
        hidden_size,
        kernel_initializer=initializers.xavier_uniform(ffn_dim, hidden_size),
        bias_initializer=initializers.torch_linear_default(ffn_dim),
        name='linear2')

  def call(self, inputs: tf.Tensor, training: Optional[bool] = None):
    return self._linear2(self._dropout(self._linear1(inputs),
                                       training=training))


class TransformerEncoderLayer(tf_keras.layers.Layer):
  """Post-norm self-attention + FFN layer; positions added to q and k only.

  The residual stream stays float32 (LayerNorm outputs; inputs are not
  autocast); the attention and the FFN run in the layer's compute dtype.
  """

  def __init__(self, hidden_size: int, num_heads: int, ffn_dim: int,
               dropout: float, norm_epsilon: float = NORM_EPSILON, **kwargs):
    super().__init__(autocast=False, **kwargs)
    self._self_attention = attention.MultiHeadAttention(
        hidden_size, num_heads, dropout=dropout, name='self_attention')
    self._attention_dropout = tf_keras.layers.Dropout(dropout)
    self._norm1 = layer_norm('norm1', norm_epsilon)
    self._ffn = FeedForward(hidden_size, ffn_dim, dropout, name='ffn')
    self._ffn_dropout = tf_keras.layers.Dropout(dropout)
    self._norm2 = layer_norm('norm2', norm_epsilon)

  def call(self, inputs: tf.Tensor, position: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """Encodes `inputs` [B, N, C] with positional encoding `position`."""
    src = tf.cast(inputs, tf.float32)
    src_c = tf.cast(src, self.compute_dtype)
    query_key = src_c + tf.cast(position, self.compute_dtype)
    update = self._self_attention(query_key, src_c, key=query_key,
                                  training=training)
    update = self._attention_dropout(update, training=training)
    src = self._norm1(src + tf.cast(update, tf.float32))
    update = self._ffn(tf.cast(src, self.compute_dtype), training=training)
    update = self._ffn_dropout(update, training=training)
    return self._norm2(src + tf.cast(update, tf.float32))


class TransformerEncoder(tf_keras.layers.Layer):
  """A stack of `TransformerEncoderLayer`s (post-norm, no final norm)."""

  def __init__(self, num_layers: int, hidden_size: int, num_heads: int,
               ffn_dim: int, dropout: float, norm_epsilon: float = NORM_EPSILON,
               **kwargs):
    super().__init__(**kwargs)
    self._layers = [
        TransformerEncoderLayer(hidden_size, num_heads, ffn_dim, dropout,
                                norm_epsilon, name=f'layer_{i}')
        for i in range(num_layers)
    ]

  def call(self, inputs: tf.Tensor, position: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """Returns the encoded [B, N, C] sequence (float32 if any layer ran)."""
    outputs = inputs
    for layer in self._layers:
      outputs = layer(outputs, position, training=training)
    return outputs
