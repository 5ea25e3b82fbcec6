"""Tests for the transformer-encoder pixel decoder against a numpy/tf.nn reference."""

import numpy as np
import tensorflow as tf

from trainer_module.modeling import pixel_decoder
from trainer_module.modeling.testing import detr_sine_embedding
from trainer_module.modeling.testing import layer_weights
from trainer_module.modeling.testing import np_encoder_layer


def np_group_norm(x, gamma, beta, groups, eps=1e-5):
  b, h, w, c = x.shape
  grouped = x.reshape(b, h, w, groups, c // groups)
  mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
  var = grouped.var(axis=(1, 2, 4), keepdims=True)
  normalised = ((grouped - mean) / np.sqrt(var + eps)).reshape(b, h, w, c)
  return normalised * gamma + beta


def conv(x, kernel, bias=None):
  """Stride-1 'same' convolution (tf.nn primitive, NHWC)."""
  outputs = tf.nn.conv2d(x.astype(np.float32), kernel, 1, 'SAME').numpy()
  return outputs if bias is None else outputs + bias


def reference_pixel_decoder(weights, features, hidden, groups):
  """MaskFormer TransformerEncoderPixelDecoder.forward_features (eval)."""
  def conv_norm(prefix, x, relu):
    y = np_group_norm(conv(x, weights[f'{prefix}/conv/kernel']),
                      weights[f'{prefix}/norm/gamma'],
                      weights[f'{prefix}/norm/beta'], groups)
    return np.maximum(y, 0.0) if relu else y

  res5 = conv(features['5'], weights['input_projection/kernel'],
              weights['input_projection/bias'])
  batch, height, width, _ = res5.shape
  pos = detr_sine_embedding(height, width, hidden // 2).reshape(1, -1, hidden)
  encoder = {k.split('/', 2)[2]: v for k, v in weights.items()
             if k.startswith('transformer_encoder/layer_0/')}
  memory = np_encoder_layer(encoder, res5.reshape(batch, -1, hidden), pos)
  y = conv_norm('output_conv_5', memory.reshape(res5.shape), relu=True)
  for level in ('4', '3', '2'):
    lateral = conv_norm(f'lateral_conv_{level}', features[level], relu=False)
    y = lateral + y.repeat(2, axis=1).repeat(2, axis=2)  # nearest ×2
    y = conv_norm(f'output_conv_{level}', y, relu=True)
  mask_features = conv(y, weights['mask_features/kernel'],
                       weights['mask_features/bias'])
  return mask_features, memory, pos[0]


def test_matches_reference():
  rng = np.random.default_rng(0)
  hidden, mask_dim, groups = 8, 6, 2
  channels = {'2': 3, '3': 5, '4': 4, '5': 7}
  features = {
      level: rng.normal(size=[2, 64 // 2**int(level), 96 // 2**int(level),
                              c]).astype(np.float32)
      for level, c in channels.items()
  }
  decoder = pixel_decoder.TransformerEncoderPixelDecoder(
      hidden_size=hidden, mask_dim=mask_dim, num_encoder_layers=1,
      num_heads=2, ffn_dim=12, dropout=0.1, norm_groups=groups,
      name='pixel_decoder')
  decoder(features)
  for variable in decoder.weights:
    variable.assign(rng.normal(scale=0.5, size=variable.shape))
  mask_features, memory, position = decoder(features, training=False)
  assert mask_features.shape == (2, 16, 24, mask_dim)
  assert memory.shape == (2, 2 * 3, hidden)
  assert position.shape == (2 * 3, hidden)

  expected = reference_pixel_decoder(layer_weights(decoder), features, hidden,
                                     groups)
  np.testing.assert_allclose(mask_features.numpy(), expected[0], rtol=1e-3,
                             atol=1e-3)
  np.testing.assert_allclose(memory.numpy(), expected[1], atol=1e-4)
  np.testing.assert_allclose(position.numpy(), expected[2], atol=1e-5)


def test_group_norm_matches_numpy_and_keras():
  rng = np.random.default_rng(1)
  inputs = rng.normal(loc=2.0, scale=3.0, size=[2, 5, 7, 12]).astype(np.float32)
  layer = pixel_decoder.GroupNormalization(4, epsilon=1e-5)
  layer(inputs)
  gamma = rng.normal(size=12).astype(np.float32)
  beta = rng.normal(size=12).astype(np.float32)
  layer.set_weights([gamma, beta])
  keras_layer = tf.keras.layers.GroupNormalization(groups=4, epsilon=1e-5)
  keras_layer(inputs)
  keras_layer.set_weights([gamma, beta])
  actual = layer(inputs).numpy()
  np.testing.assert_allclose(actual, np_group_norm(inputs, gamma, beta, 4),
                             atol=1e-5)
  np.testing.assert_allclose(actual, keras_layer(inputs).numpy(), atol=1e-5)
