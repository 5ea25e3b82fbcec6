"""detectron2's ResNet (the original MaskFormer's backbone) in Keras.

Numerically the PyTorch model (`detectron2.modeling.backbone.resnet`):
* every convolution pads symmetrically and explicitly (7×7/2 stem conv: 3,
  3×3 convs: 1), unlike TF "SAME", which pads (2, 3) / (0, 1) for strided
  convolutions of even sizes; the 3×3/2 max-pool pads 1 on each side;
* no convolution has a bias; each is followed by FrozenBatchNorm2d,
  y = (x − mean) · weight / sqrt(var + eps) + bias with eps 1e-5 and all four
  statistics frozen (non-trainable);
* bottleneck blocks 1×1 → 3×3 → 1×1 with the stage's stride in the 3×3 conv
  (or in the 1×1 with `stride_in_1x1`), a projection shortcut (1×1 conv with
  the stride + FrozenBN) when the channels change.

Layers are named as detectron2's modules (`stem/conv1/norm`, `res2_0/conv1`,
`res2_0/shortcut`), which is how the weight converter finds them. Outputs
the endpoints '2'..'5' (strides 4..32) that the MaskFormer pixel decoder
consumes, like TFMG's ResNet.
"""

from typing import Dict, Optional

import tensorflow as tf
import tf_keras

from official.vision.modeling.backbones import factory
from trainer_module.configs import backbones as backbones_cfg

BACKBONE_TYPE = 'detectron2_resnet'


class FrozenBatchNorm(tf_keras.layers.Layer):
  """detectron2's FrozenBatchNorm2d: fixed affine batch norm."""

  def __init__(self, epsilon: float = 1e-5, **kwargs):
    super().__init__(**kwargs)
    self._epsilon = epsilon

  def build(self, input_shape):
    channels = input_shape[-1]
    for name, initializer in (('gamma', 'ones'), ('beta', 'zeros'),
                              ('moving_mean', 'zeros'),
                              ('moving_variance', 'ones')):
      setattr(self, name, self.add_weight(
          name, shape=[channels], initializer=initializer, trainable=False,
          dtype=tf.float32))
    super().build(input_shape)

  def scale_and_shift(self):
    """(scale, shift) of y = x · scale + shift, as FrozenBatchNorm2d."""
    scale = self.gamma * tf.math.rsqrt(self.moving_variance + self._epsilon)
    return scale, self.beta - self.moving_mean * scale

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    # The same operations, in the same order, as FrozenBatchNorm2d.forward.
    scale, shift = self.scale_and_shift()
    return (inputs * tf.cast(scale, inputs.dtype)
            + tf.cast(shift, inputs.dtype))

  def get_config(self):
    return dict(super().get_config(), epsilon=self._epsilon)


class ConvFrozenBN(tf_keras.layers.Layer):
  """detectron2 `Conv2d(bias=False, norm=FrozenBN)` with symmetric padding."""

  def __init__(self, filters: int, kernel_size: int, strides: int = 1,
               epsilon: float = 1e-5, trainable: bool = True,
               kernel_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    self._padding = (kernel_size - 1) // 2
    # detectron2's c2_msra_fill: He normal over the fan-out.
    self.conv = tf_keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding='valid',
        use_bias=False, trainable=trainable,
        kernel_initializer=tf_keras.initializers.VarianceScaling(
            2.0, mode='fan_out', distribution='untruncated_normal'),
        kernel_regularizer=kernel_regularizer, name='conv')
    self.norm = FrozenBatchNorm(epsilon, name='norm')

  def build(self, input_shape):
    # The sublayers' weights under their own names, as calling them would.
    # Only the channels matter (the convolution pads its input itself).
    channels = tf.TensorShape(input_shape)[-1]
    with tf.name_scope(self.conv.name):
      self.conv.build(tf.TensorShape([None, None, None, channels]))
    with tf.name_scope(self.norm.name):
      self.norm.build(tf.TensorShape([None, None, None, self.conv.filters]))
    super().build(input_shape)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    # conv(x, W) · scale + shift computed as conv(x, W · scale) + shift: the
    # frozen scale is folded into the kernel (a weight-sized multiply instead
    # of two activation-sized passes, forward and backward), the padding is
    # the convolution's own (no padded copy of the input) and the shift is a
    # BiasAdd, which grappler fuses with the convolution and a following
    # ReLU on CPU.
    scale, shift = self.norm.scale_and_shift()
    kernel = tf.cast(self.conv.kernel, tf.float32) * scale
    pad = self._padding
    padding = ([[0, 0], [pad, pad], [pad, pad], [0, 0]] if pad
               else self.conv.padding.upper())
    outputs = tf.nn.conv2d(inputs, tf.cast(kernel, inputs.dtype),
                           strides=self.conv.strides, padding=padding)
    return tf.nn.bias_add(outputs, tf.cast(shift, inputs.dtype))


class Bottleneck(tf_keras.layers.Layer):
  """detectron2's BottleneckBlock (groups 1, no dilation)."""

  def __init__(self, in_channels: int, out_channels: int,
               bottleneck_channels: int, stride: int, stride_in_1x1: bool,
               epsilon: float, trainable: bool = True,
               kernel_regularizer=None, **kwargs):
    super().__init__(**kwargs)
    conv_kwargs = dict(epsilon=epsilon, trainable=trainable,
                       kernel_regularizer=kernel_regularizer)
    self.shortcut = None
    if in_channels != out_channels:
      self.shortcut = ConvFrozenBN(out_channels, 1, stride, name='shortcut',
                                   **conv_kwargs)
    stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
    self.conv1 = ConvFrozenBN(bottleneck_channels, 1, stride_1x1,
                              name='conv1', **conv_kwargs)
    self.conv2 = ConvFrozenBN(bottleneck_channels, 3, stride_3x3,
                              name='conv2', **conv_kwargs)
    self.conv3 = ConvFrozenBN(out_channels, 1, 1, name='conv3', **conv_kwargs)

  def call(self, inputs: tf.Tensor) -> tf.Tensor:
    outputs = tf.nn.relu(self.conv1(inputs))
    outputs = tf.nn.relu(self.conv2(outputs))
    outputs = self.conv3(outputs)
    shortcut = inputs if self.shortcut is None else self.shortcut(inputs)
    return tf.nn.relu(outputs + shortcut)


class Detectron2ResNet(tf_keras.Model):
  """detectron2 ResNet-50/101/152 returning endpoints '2'..'5'."""

  def __init__(self, config: backbones_cfg.Detectron2ResNet,
               kernel_regularizer=None, name: str = BACKBONE_TYPE, **kwargs):
    super().__init__(name=name, **kwargs)
    if config.depth not in backbones_cfg.DETECTRON2_RESNET_BLOCKS:
      raise ValueError(
          f'detectron2_resnet.depth={config.depth} is not supported; expected '
          f'one of {sorted(backbones_cfg.DETECTRON2_RESNET_BLOCKS)} '
          '(bottleneck ResNets).')
    self._config = config
    epsilon = config.norm_epsilon
    self.stem = ConvFrozenBN(
        config.stem_out_channels, 7, 2, epsilon=epsilon,
        trainable=config.freeze_at < 1, kernel_regularizer=kernel_regularizer,
        name='stem_conv1')
    self.stages = []
    in_channels = config.stem_out_channels
    out_channels = config.res2_out_channels
    bottleneck_channels = config.width_per_group
    for stage, num_blocks in enumerate(
        backbones_cfg.DETECTRON2_RESNET_BLOCKS[config.depth]):
      level = stage + 2
      blocks = []
      for index in range(num_blocks):
        blocks.append(Bottleneck(
            in_channels, out_channels, bottleneck_channels,
            stride=1 if index or level == 2 else 2,
            stride_in_1x1=config.stride_in_1x1, epsilon=epsilon,
            trainable=config.freeze_at < level,
            kernel_regularizer=kernel_regularizer,
            name=f'res{level}_{index}'))
        in_channels = out_channels
      self.stages.append(blocks)
      out_channels *= 2
      bottleneck_channels *= 2
    self._output_channels = {str(level + 2): config.res2_out_channels * 2**level
                             for level in range(4)}

  @property
  def output_channels(self) -> Dict[str, int]:
    """Channels of each endpoint."""
    return dict(self._output_channels)

  def call(self, inputs: tf.Tensor,
           training: Optional[bool] = None) -> Dict[str, tf.Tensor]:
    del training  # Frozen batch norm and no dropout: same in both modes.
    outputs = tf.nn.relu(self.stem(inputs))
    # Max-pool 3×3/2 with padding 1: the input is post-ReLU (>= 0), so zero
    # padding equals PyTorch's -inf padding.
    outputs = tf.pad(outputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
    outputs = tf.nn.max_pool2d(outputs, 3, 2, 'VALID')
    endpoints = {}
    for stage, blocks in enumerate(self.stages):
      for block in blocks:
        outputs = block(outputs)
      endpoints[str(stage + 2)] = outputs
    return endpoints

  def get_config(self):
    return dict(config=self._config.as_dict(), name=self.name)

  @classmethod
  def from_config(cls, config, custom_objects=None):
    config = dict(config)
    return cls(backbones_cfg.Detectron2ResNet(config.pop('config')), **config)


@factory.register_backbone_builder(BACKBONE_TYPE)
def build_detectron2_resnet(input_specs, backbone_config,
                            norm_activation_config, l2_regularizer=None,
                            **kwargs) -> Detectron2ResNet:
  """TFMG backbone-factory builder of `backbone.type: detectron2_resnet`.

  `norm_activation_config` is not used: the detectron2 ResNet always uses
  FrozenBN (epsilon `detectron2_resnet.norm_epsilon`) and ReLU.
  """
  del norm_activation_config, kwargs
  backbone = Detectron2ResNet(backbone_config.detectron2_resnet,
                              kernel_regularizer=l2_regularizer)
  if input_specs is not None and input_specs.shape is not None:
    # Built eagerly on zeros: `build()` would trace `call` with AutoGraph
    # (slow, and nothing here needs it).
    _, height, width, channels = input_specs.shape
    backbone(tf.zeros([1, height or 64, width or 64, channels or 3]))
  return backbone
