"""Multi-head attention with the reference initialisation and float32 softmax."""

import tf_keras

from trainer_module.modeling import initializers


class MultiHeadAttention(tf_keras.layers.MultiHeadAttention):
  """`tf_keras.layers.MultiHeadAttention` as used by DETR-style transformers.

  Differences from the base layer:
  * the attention softmax runs in float32 under a mixed-precision policy (the
    probabilities are cast back to the compute dtype for the value product);
  * initialisation matches `torch.nn.MultiheadAttention` inside the reference
    transformer: the packed q/k/v projection is Xavier-uniform over a
    [3·d, d] matrix, the output projection Xavier-uniform over [d, d], and all
    biases are zero.

  Call it as `layer(query, value, key=key)`; DETR adds positional encodings
  to the query and key but not to the value.
  """

  def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0,
               **kwargs):
    if hidden_size % num_heads:
      raise ValueError(f'hidden_size={hidden_size} is not divisible by '
                       f'num_heads={num_heads}.')
    super().__init__(
        num_heads=num_heads,
        key_dim=hidden_size // num_heads,
        dropout=dropout,
        kernel_initializer=initializers.xavier_uniform(
            hidden_size, 3 * hidden_size),
        bias_initializer='zeros',
        **kwargs)
    self._hidden_size = hidden_size

  def _build_attention(self, rank):
    super()._build_attention(rank)
    self._softmax = tf_keras.layers.Softmax(
        axis=self._softmax.axis, dtype='float32')

  def _make_output_dense(self, free_dims, common_kwargs, name=None):
    common_kwargs = dict(
        common_kwargs,
        kernel_initializer=initializers.xavier_uniform(
            self._hidden_size, self._hidden_size))
    return super()._make_output_dense(free_dims, common_kwargs, name)

  def get_config(self):
    config = super().get_config()
    for key in ('num_heads', 'key_dim', 'value_dim', 'kernel_initializer',
                'bias_initializer'):
      config.pop(key, None)
    config.update(hidden_size=self._hidden_size, num_heads=self._num_heads)
    return config
