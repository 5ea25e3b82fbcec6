"""DETR transformer decoder (post-norm) with learned query positions."""

from typing import Optional

import tensorflow as tf
import tf_keras

from trainer_module.modeling import attention
from trainer_module.modeling import transformer_encoder


class TransformerDecoderLayer(tf_keras.layers.Layer):
  """Post-norm decoder layer: self-attention, cross-attention, FFN.

  Query positions are added to the self-attention query/key and to the
  cross-attention query; memory positions to the cross-attention key. The
  residual stream stays float32 (LayerNorm outputs; inputs are not autocast).
  """

  def __init__(self, hidden_size: int, num_heads: int, ffn_dim: int,
               dropout: float,
               norm_epsilon: float = transformer_encoder.NORM_EPSILON,
               **kwargs):
    super().__init__(autocast=False, **kwargs)
    self._self_attention = attention.MultiHeadAttention(
        hidden_size, num_heads, dropout=dropout, name='self_attention')
    self._self_attention_dropout = tf_keras.layers.Dropout(dropout)
    self._norm1 = transformer_encoder.layer_norm('norm1', norm_epsilon)
    self._cross_attention = attention.MultiHeadAttention(
        hidden_size, num_heads, dropout=dropout, name='cross_attention')
    self._cross_attention_dropout = tf_keras.layers.Dropout(dropout)
    self._norm2 = transformer_encoder.layer_norm('norm2', norm_epsilon)
    self._ffn = transformer_encoder.FeedForward(
        hidden_size, ffn_dim, dropout, name='ffn')
    self._ffn_dropout = tf_keras.layers.Dropout(dropout)
    self._norm3 = transformer_encoder.layer_norm('norm3', norm_epsilon)

  def call(self, target: tf.Tensor, memory: tf.Tensor,
           query_position: tf.Tensor, memory_position: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """Updates `target` [B, Q, C] attending to `memory` [B, N, C]."""
    dtype = self.compute_dtype
    target = tf.cast(target, tf.float32)
    query_position = tf.cast(query_position, dtype)
    memory_c = tf.cast(memory, dtype)
    memory_key = memory_c + tf.cast(memory_position, dtype)

    target_c = tf.cast(target, dtype)
    query_key = target_c + query_position
    update = self._self_attention(query_key, target_c, key=query_key,
                                  training=training)
    update = self._self_attention_dropout(update, training=training)
    target = self._norm1(target + tf.cast(update, tf.float32))

    query = tf.cast(target, dtype) + query_position
    update = self._cross_attention(query, memory_c, key=memory_key,
                                   training=training)
    update = self._cross_attention_dropout(update, training=training)
    target = self._norm2(target + tf.cast(update, tf.float32))

    update = self._ffn(tf.cast(target, dtype), training=training)
    update = self._ffn_dropout(update, training=training)
    return self._norm3(target + tf.cast(update, tf.float32))


class TransformerDecoder(tf_keras.layers.Layer):
  """Stack of decoder layers with learned queries and a shared final norm.

  The target starts at zeros and the `num_queries` learned embeddings
  (`query_embeddings`, N(0, 1) init like `nn.Embedding`) are the query
  positions. Every layer's output goes through the shared final LayerNorm.
  """

  def __init__(self, num_layers: int, num_queries: int, hidden_size: int,
               num_heads: int, ffn_dim: int, dropout: float,
               norm_epsilon: float = transformer_encoder.NORM_EPSILON,
               **kwargs):
    super().__init__(**kwargs)
    self._num_queries = num_queries
    self._hidden_size = hidden_size
    self._layers = [
        TransformerDecoderLayer(hidden_size, num_heads, ffn_dim, dropout,
                                norm_epsilon, name=f'layer_{i}')
        for i in range(num_layers)
    ]
    self._final_norm = transformer_encoder.layer_norm('final_norm',
                                                      norm_epsilon)

  def build(self, input_shape):
    self.query_embeddings = self.add_weight(
        'query_embeddings',
        shape=[self._num_queries, self._hidden_size],
        initializer=tf_keras.initializers.RandomNormal(stddev=1.0),
        dtype=tf.float32,
        trainable=True)
    super().build(input_shape)

  def call(self, memory: tf.Tensor, memory_position: tf.Tensor,
           training: Optional[bool] = None) -> tf.Tensor:
    """Decodes the queries.

    Args:
      memory: [B, N, C] encoder output.
      memory_position: [N, C] or [B, N, C] positional encoding of `memory`.
      training: Whether dropout is active.

    Returns:
      float32 [L, B, Q, C]: every layer's output after the final LayerNorm.
    """
    batch_size = tf.shape(memory)[0]
    query_position = tf.broadcast_to(
        self.query_embeddings[None],
        [batch_size, self._num_queries, self._hidden_size])
    target = tf.zeros_like(query_position)
    outputs = []
    for layer in self._layers:
      target = layer(target, memory, query_position, memory_position,
                     training=training)
      outputs.append(self._final_norm(target))
    return tf.stack(outputs, axis=0)
