"""MaskFormer prediction heads: class logits and per-query mask logits."""

from typing import Tuple

import tensorflow as tf
import tf_keras

from trainer_module.modeling import initializers


class MaskFormerHeads(tf_keras.layers.Layer):
  """Class head Linear(hidden → K+1) and a 3-layer mask-embedding MLP.

  Mask logits are einsum('lbqc,bhwc->lbhwq') of the mask embeddings with
  the per-pixel mask features. All linear layers use PyTorch's default
  `nn.Linear` initialisation, as the reference. The class head runs in
  float32; the MLP and einsum run in the compute dtype and the mask logits
  are returned as float32.
  """

  def __init__(self, num_classes: int, hidden_size: int, mask_dim: int,
               num_mlp_layers: int = 3, **kwargs):
    super().__init__(**kwargs)
    self._class_head = tf_keras.layers.Dense(
        num_classes + 1,
        kernel_initializer=initializers.torch_linear_default(hidden_size),
        bias_initializer=initializers.torch_linear_default(hidden_size),
        dtype='float32', name='class_head')
    self._mask_mlp = []
    for i in range(num_mlp_layers):
      last = i == num_mlp_layers - 1
      self._mask_mlp.append(tf_keras.layers.Dense(
          mask_dim if last else hidden_size,
          activation=None if last else 'relu',
          kernel_initializer=initializers.torch_linear_default(hidden_size),
          bias_initializer=initializers.torch_linear_default(hidden_size),
          name=f'mask_mlp_{i}'))

  def call(self, queries: tf.Tensor, mask_features: tf.Tensor
           ) -> Tuple[tf.Tensor, tf.Tensor]:
    """Predicts class and mask logits.

    Args:
      queries: [L, B, Q, hidden] decoder outputs of L decoder layers.
      mask_features: [B, H, W, mask_dim] per-pixel embeddings.

    Returns:
      class_logits: float32 [L, B, Q, K + 1].
      mask_logits: float32 [L, B, H, W, Q].
    """
    class_logits = self._class_head(tf.cast(queries, tf.float32))
    mask_embeddings = tf.cast(queries, self.compute_dtype)
    for layer in self._mask_mlp:
      mask_embeddings = layer(mask_embeddings)
    mask_logits = tf.einsum('lbqc,bhwc->lbhwq', mask_embeddings,
                            tf.cast(mask_features, self.compute_dtype))
    return class_logits, tf.cast(mask_logits, tf.float32)
