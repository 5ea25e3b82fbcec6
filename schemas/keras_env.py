"""Keeps `tf.keras` on Keras 2 (tf_keras), which TFX, TFT, TFMA and TFMG need.

TensorFlow 2.16 picks the Keras behind `tf.keras` on first access from the
`TF_USE_LEGACY_KERAS` environment variable. The Makefile, tests, CLI and the
container image set it before Python starts; this module makes importing our
packages set it too (for Beam workers and notebooks) and fails loudly where it
is already too late.

It lives in `schemas`, the bottom layer that every package may import, and
imports nothing but the standard library (it must run before TensorFlow loads).
"""

import os
import sys


class KerasVersionError(RuntimeError):
  """`tf.keras` is Keras 3, so TFX/TFMG code would break in confusing ways."""


def ensure_legacy_keras() -> None:
  """Selects tf_keras for `tf.keras`, or raises if Keras 3 is already bound."""
  os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
  tf = sys.modules.get('tensorflow')
  if tf is None:
    return
  keras_module = getattr(tf, 'keras').__name__
  if not keras_module.startswith('tf_keras'):
    raise KerasVersionError(
        f'tf.keras is {keras_module} (Keras 3), but maskformer-tfx needs Keras 2 '
        '(tf_keras). Set TF_USE_LEGACY_KERAS=1 in the environment before Python '
        'starts (the Makefile, tests and container image do).')
