"""AdamW with a learning-rate multiplier for a subset of the variables.

The reference MaskFormer trains the backbone with 0.1 × the base learning rate
(detectron2 parameter groups). TF Model Garden 2.16's optimizer factory has no
per-variable learning rate, and scaling the *gradients* of the backbone would
not work: Adam normalises the gradient by its running RMS, so the update does
not depend on the gradient's scale. `AdamWeightDecayLrMultiplier` therefore
scales the learning rate itself — the Adam step and the decoupled weight
decay, as a PyTorch parameter group with `lr × multiplier` does — for the
variables whose name matches `lr_multiplier_pattern`.

It is registered with the optimizer factory as `adamw_lr_multiplier`; use
`OptimizationConfig` below (TFMG's config with that one extra optimizer type).
"""

import dataclasses
import re
from typing import Any, Dict, Optional

import tensorflow as tf

from official.modeling import optimization
from official.modeling.optimization import legacy_adamw
from official.modeling.optimization import optimizer_factory

OPTIMIZER_TYPE = 'adamw_lr_multiplier'

# Our model's own layers create their variables under the model name scope
# ('maskformer/...'); the TFMG backbone is a functional model whose variables
# carry no such prefix. This pattern selects exactly the backbone variables
# (checked against `model.backbone.trainable_variables` in the tests).
BACKBONE_VARIABLES_PATTERN = r'^(?!maskformer/)'


@dataclasses.dataclass
class AdamWeightDecayLrMultiplierConfig(optimization.AdamWeightDecayConfig):
  """`AdamWeightDecayConfig` plus a learning-rate multiplier.

  Attributes:
    lr_multiplier: Factor applied to the learning rate (update and weight
      decay) of the variables matching `lr_multiplier_pattern`.
    lr_multiplier_pattern: Regular expression searched (`re.search`) in the
      variable names; '' selects no variable.
  """
  name: str = 'AdamWeightDecayLrMultiplier'
  lr_multiplier: float = 1.0
  lr_multiplier_pattern: str = ''


@dataclasses.dataclass
class OptimizerConfig(optimization.OptimizerConfig):
  """TFMG's optimizer oneof with `adamw_lr_multiplier` added."""
  adamw_lr_multiplier: AdamWeightDecayLrMultiplierConfig = dataclasses.field(
      default_factory=AdamWeightDecayLrMultiplierConfig)


@dataclasses.dataclass
class OptimizationConfig(optimization.OptimizationConfig):
  """TFMG's optimization config whose optimizer may be `adamw_lr_multiplier`."""
  optimizer: OptimizerConfig = dataclasses.field(
      default_factory=OptimizerConfig)


class AdamWeightDecayLrMultiplier(legacy_adamw.AdamWeightDecay):
  """TFMG's `AdamWeightDecay` with a learning-rate multiplier per variable.

  Variables whose name matches `lr_multiplier_pattern` are updated (Adam step
  and decoupled weight decay) with `lr_multiplier` × the learning rate; all
  other variables exactly as by `AdamWeightDecay`.
  """

  def __init__(self,
               lr_multiplier: float = 1.0,
               lr_multiplier_pattern: str = '',
               name: str = 'AdamWeightDecayLrMultiplier',
               **kwargs):
    super().__init__(name=name, **kwargs)
    self.lr_multiplier = float(lr_multiplier)
    self.lr_multiplier_pattern = lr_multiplier_pattern
    self._lr_multiplier_regex = (
        re.compile(lr_multiplier_pattern) if lr_multiplier_pattern else None)

  def learning_rate_multiplier(self, variable_name: str) -> float:
    """The multiplier applied to the learning rate of `variable_name`."""
    if (self._lr_multiplier_regex is not None and
        self._lr_multiplier_regex.search(variable_name)):
      return self.lr_multiplier
    return 1.0

  def _scaled_apply_state(self, var: tf.Variable,
                          apply_state: Optional[Dict[Any, Any]]
                         ) -> Optional[Dict[Any, Any]]:
    """Returns `apply_state` with the learning rates of `var` scaled."""
    multiplier = self.learning_rate_multiplier(var.name)
    if multiplier == 1.0:
      return apply_state
    key = (var.device, var.dtype.base_dtype)
    coefficients = dict((apply_state or {}).get(key) or
                        self._fallback_apply_state(*key))
    # 'lr_t' drives the dense Adam kernel and the weight decay, 'lr' (with
    # the bias correction folded in) the sparse update.
    for name in ('lr_t', 'lr'):
      coefficients[name] = coefficients[name] * multiplier
    return {key: coefficients}

  def _resource_apply_dense(self, grad, var, apply_state=None):
    return super()._resource_apply_dense(
        grad, var, apply_state=self._scaled_apply_state(var, apply_state))

  def _resource_apply_sparse(self, grad, var, indices, apply_state=None):
    return super()._resource_apply_sparse(
        grad, var, indices,
        apply_state=self._scaled_apply_state(var, apply_state))

  def get_config(self) -> Dict[str, Any]:
    config = super().get_config()
    config.update(lr_multiplier=self.lr_multiplier,
                  lr_multiplier_pattern=self.lr_multiplier_pattern)
    return config


if OPTIMIZER_TYPE not in optimizer_factory.LEGACY_OPTIMIZERS_CLS:
  optimizer_factory.register_optimizer_cls(OPTIMIZER_TYPE,
                                           AdamWeightDecayLrMultiplier)
