"""PyTorch (detectron2 MaskFormer) tensor names ↔ our model's variables.

Layouts: PyTorch conv weights are [out, in, kh, kw] (Keras [kh, kw, in, out]),
Linear weights [out, in] (Keras Dense kernels [in, out]);
`nn.MultiheadAttention` packs the q/k/v projections in `in_proj_weight`
[3C, C] / `in_proj_bias` [3C] (rows q, k, v) and splits heads contiguously,
which Keras' MultiHeadAttention keeps as [C, heads, C/heads] kernels and
[heads, C/heads] biases (output projection [heads, C/heads, C]).
FrozenBN / GroupNorm / LayerNorm `weight`, `bias` are gamma, beta;
`running_mean`, `running_var` the moving statistics.

Every checkpoint tensor must set a variable and every variable must be set;
otherwise `assign` raises naming the leftovers on both sides.
"""

import re
from typing import Callable, Dict, List, Mapping, Tuple

import numpy as np
import tensorflow as tf

from trainer_module.detectron2_import.detectron2_pickle import CheckpointError

# (TF variable key, conversion of the PyTorch array, reshape to the variable).
Target = Tuple[str, Callable[[np.ndarray], np.ndarray], bool]

# The reference's loss weights: checked for shape, not a model variable.
CRITERION_EMPTY_WEIGHT = 'criterion.empty_weight'


def _identity(value):
  return value


def _conv(value):
  return np.transpose(value, (2, 3, 1, 0))


def _linear(value):
  return np.transpose(value)


def _part(index: int, transform=_identity):
  def take(value):
    size = value.shape[0] // 3
    return transform(value[index * size:(index + 1) * size])
  return take


_NORM_SUFFIXES = {'weight': 'gamma', 'bias': 'beta',
                  'running_mean': 'moving_mean',
                  'running_var': 'moving_variance'}


def _conv_norm_targets(prefix: str, rest: str) -> List[Target]:
  """detectron2 `Conv2d(norm=...)`: `weight`, `bias`, `norm.*`."""
  if rest == 'weight':
    return [(f'{prefix}/conv/kernel', _conv, False)]
  if rest.startswith('norm.') and rest[5:] in _NORM_SUFFIXES:
    return [(f'{prefix}/norm/{_NORM_SUFFIXES[rest[5:]]}', _identity, False)]
  return []


def _plain_targets(prefix: str, rest: str, transform) -> List[Target]:
  """A conv/Linear/LayerNorm with `weight` (kernel or gamma) and `bias`."""
  if rest == 'weight':
    name = 'gamma' if transform is None else 'kernel'
    return [(f'{prefix}/{name}', transform or _identity, False)]
  if rest == 'bias':
    name = 'beta' if transform is None else 'bias'
    return [(f'{prefix}/{name}', _identity, False)]
  return []


def _transformer_layer_targets(prefix: str, rest: str) -> List[Target]:
  """One DETR encoder/decoder layer's tensors."""
  match = re.fullmatch(r'(self_attn|multihead_attn)\.(.+)', rest)
  if match:
    attention = prefix + ('/self_attention' if match.group(1) == 'self_attn'
                          else '/cross_attention')
    tensor = match.group(2)
    if tensor == 'in_proj_weight':
      return [(f'{attention}/{part}/kernel', _part(i, _linear), True)
              for i, part in enumerate(('query', 'key', 'value'))]
    if tensor == 'in_proj_bias':
      return [(f'{attention}/{part}/bias', _part(i), True)
              for i, part in enumerate(('query', 'key', 'value'))]
    if tensor == 'out_proj.weight':
      return [(f'{attention}/attention_output/kernel', _linear, True)]
    if tensor == 'out_proj.bias':
      return [(f'{attention}/attention_output/bias', _identity, False)]
    return []
  match = re.fullmatch(r'(linear[12])\.(weight|bias)', rest)
  if match:
    return _plain_targets(f'{prefix}/ffn/{match.group(1)}', match.group(2),
                          _linear)
  match = re.fullmatch(r'(norm[123])\.(weight|bias)', rest)
  if match:
    return _plain_targets(f'{prefix}/{match.group(1)}', match.group(2), None)
  return []


def targets_of(name: str) -> List[Target]:
  """The variables a (state_dict-spelled) tensor sets; [] if none."""
  rules = (
      (r'backbone\.stem\.conv1\.(.+)',
       lambda m: _conv_norm_targets('backbone/stem_conv1', m.group(1))),
      (r'backbone\.res(\d)\.(\d+)\.(conv[123]|shortcut)\.(.+)',
       lambda m: _conv_norm_targets(
           f'backbone/res{m.group(1)}_{m.group(2)}/{m.group(3)}',
           m.group(4))),
      (r'sem_seg_head\.pixel_decoder\.input_proj\.(.+)',
       lambda m: _plain_targets('pixel_decoder/input_projection', m.group(1),
                                _conv)),
      (r'sem_seg_head\.pixel_decoder\.mask_features\.(.+)',
       lambda m: _plain_targets('pixel_decoder/mask_features', m.group(1),
                                _conv)),
      # adapter_i / layer_i: lateral / output conv of res(i + 1).
      (r'sem_seg_head\.pixel_decoder\.adapter_(\d)\.(weight|norm\.\w+)',
       lambda m: _conv_norm_targets(
           f'pixel_decoder/lateral_conv_{int(m.group(1)) + 1}', m.group(2))),
      (r'sem_seg_head\.pixel_decoder\.layer_(\d)\.(weight|norm\.\w+)',
       lambda m: _conv_norm_targets(
           f'pixel_decoder/output_conv_{int(m.group(1)) + 1}', m.group(2))),
      (r'sem_seg_head\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.(.+)',
       lambda m: _transformer_layer_targets(
           f'pixel_decoder/transformer_encoder/layer_{m.group(1)}',
           m.group(2))),
      (r'sem_seg_head\.predictor\.query_embed\.weight',
       lambda m: [('transformer_decoder/query_embeddings', _identity, False)]),
      (r'sem_seg_head\.predictor\.transformer\.decoder\.layers\.(\d+)\.(.+)',
       lambda m: _transformer_layer_targets(
           f'transformer_decoder/layer_{m.group(1)}', m.group(2))),
      (r'sem_seg_head\.predictor\.transformer\.decoder\.norm\.(weight|bias)',
       lambda m: _plain_targets('transformer_decoder/final_norm', m.group(1),
                                None)),
      (r'sem_seg_head\.predictor\.class_embed\.(weight|bias)',
       lambda m: _plain_targets('heads/class_head', m.group(1), _linear)),
      (r'sem_seg_head\.predictor\.mask_embed\.layers\.(\d)\.(weight|bias)',
       lambda m: _plain_targets(f'heads/mask_mlp_{m.group(1)}', m.group(2),
                                _linear)),
  )
  for pattern, make in rules:
    match = re.fullmatch(pattern, name)
    if match:
      return make(match)
  return []


def variable_keys(modules: Mapping[str, tf.Module]) -> Dict[str, tf.Variable]:
  """`{'<module>/<path inside it>': variable}` of built modules.

  `modules` are e.g. `model.checkpoint_items`; the path inside a module is
  its variable name after the module's own name scope.
  """
  keys = {}
  for module_name, module in modules.items():
    for variable in module.variables:
      parts = variable.name.split(':')[0].split('/')
      if module.name in parts:
        parts = parts[parts.index(module.name) + 1:]
      key = '/'.join([module_name] + parts)
      if key in keys:
        raise ValueError(f'Two variables have the key {key}.')
      keys[key] = variable
  return keys


def _listing(names, limit: int = 20) -> str:
  names = sorted(names)
  text = ', '.join(names[:limit])
  return text + (f' ... ({len(names)} in all)' if len(names) > limit else '')


def assign(tensors: Mapping[str, np.ndarray],
           modules: Mapping[str, tf.Module],
           source: str,
           num_classes: int = None) -> int:
  """Sets every variable of `modules` from `tensors` (state_dict names).

  Args:
    tensors: The checkpoint, keys normalised to the state_dict spelling.
    modules: Built modules by key prefix (`backbone`, `pixel_decoder`,
      `transformer_decoder`, `heads`).
    source: The checkpoint's path, for messages.
    num_classes: K; `criterion.empty_weight` must then have K + 1 entries.

  Returns:
    The number of variables set.

  Raises:
    CheckpointError: naming the checkpoint tensors that set no variable, the
      variables no tensor sets, and tensors whose shape does not fit.
  """
  variables = variable_keys(modules)
  values = {}
  unused = []
  problems = []
  for name, array in tensors.items():
    if name == CRITERION_EMPTY_WEIGHT and num_classes is not None:
      if array.shape != (num_classes + 1,):
        problems.append(f'{name} has shape {list(array.shape)}, expected '
                        f'[{num_classes + 1}] (classes + no object)')
      continue
    targets = [t for t in targets_of(name) if t[0] in variables]
    if not targets:
      unused.append(name)
      continue
    for key, transform, reshape in targets:
      value = np.asarray(transform(np.asarray(array, np.float32)))
      shape = tuple(variables[key].shape)
      if reshape and value.size == np.prod(shape):
        value = value.reshape(shape)
      if value.shape != shape:
        problems.append(f'{name} {list(array.shape)} does not fit {key} '
                        f'{list(shape)}')
        continue
      if key in values:
        problems.append(f'{key} is set by two tensors ({name})')
      values[key] = value
  unset = set(variables) - set(values)
  if unused:
    problems.append(f'{len(unused)} checkpoint tensor(s) the model does not '
                    f'use: {_listing(unused)}')
  if unset:
    problems.append(f'{len(unset)} model variable(s) the checkpoint does not '
                    f'set: {_listing(unset)}')
  if problems:
    raise CheckpointError(f'{source}: cannot convert: ' + '; '.join(problems)
                          + '. The model (from the config) and the checkpoint '
                          'must match exactly.')
  for key, value in values.items():
    variables[key].assign(value.astype(variables[key].dtype.as_numpy_dtype))
  return len(values)
