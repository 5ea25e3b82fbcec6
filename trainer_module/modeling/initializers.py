"""Keras initialisers that reproduce the reference (PyTorch) initialisation."""

import math

import tf_keras


def torch_linear_default(fan_in: int) -> tf_keras.initializers.Initializer:
  """PyTorch's default `nn.Linear` init: U(±1/sqrt(fan_in)).

  kaiming_uniform(a=sqrt(5)) for the weight and the bias rule of `nn.Linear`
  both reduce to this bound; use it for kernels and biases.

  Args:
    fan_in: Input features of the layer.
  """
  bound = 1.0 / math.sqrt(fan_in)
  return tf_keras.initializers.RandomUniform(-bound, bound)


def xavier_uniform(fan_in: int, fan_out: int) -> tf_keras.initializers.Initializer:
  """Glorot/Xavier uniform init with explicit fans: U(±sqrt(6/(in+out))).

  Explicit fans are needed for the rank-3 EinsumDense kernels of
  multi-head attention, whose shapes would give Keras the wrong fans.

  Args:
    fan_in: Input features of the (logical) matrix.
    fan_out: Output features of the (logical) matrix.
  """
  bound = math.sqrt(6.0 / (fan_in + fan_out))
  return tf_keras.initializers.RandomUniform(-bound, bound)


def c2_xavier_fill() -> tf_keras.initializers.Initializer:
  """Detectron2's `c2_xavier_fill` for conv kernels: U(±sqrt(3/fan_in))."""
  return tf_keras.initializers.VarianceScaling(
      scale=1.0, mode='fan_in', distribution='uniform')
