"""TF Model Garden's experiment overrides: `--config_file`, then `--params_override`.

As TFMG's `train_utils.parse_configuration` builds an experiment: the
registered experiment config, each YAML `--config_file` in order, then
`--params_override` (inline YAML/JSON, TFMG's a.b=c,... pairs, or a YAML
file), all strict: a key the experiment lacks is an error. Here the sources
are merged into one override (later sources win, nested mappings merge key
by key, as `ParamsDict.override` does), so that the Trainer (local or on
Vertex) receives one self-contained JSON override and no file path.
"""

import json
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from tfx_pipeline import config as pipeline_config


class ExperimentOverrideError(ValueError):
  """An unreadable override or one with a key the experiment does not have."""


def _read_yaml_file(path: str, source: str) -> Dict[str, Any]:
  try:
    if path.startswith('gs://'):
      import tensorflow as tf
      with tf.io.gfile.GFile(path) as f:
        loaded = yaml.safe_load(f)
    else:
      with open(path, encoding='utf-8') as f:
        loaded = yaml.safe_load(f)
  except (OSError, yaml.YAMLError) as error:
    raise ExperimentOverrideError(
        f'{source} {path}: cannot read it as YAML: '
        f'{" ".join(str(error).split())}') from None
  except Exception as error:
    raise ExperimentOverrideError(f'{source} {path}: cannot read it: '
                                  f'{" ".join(str(error).split())}') from None
  if loaded is None:
    return {}
  if not isinstance(loaded, dict):
    raise ExperimentOverrideError(
        f'{source} {path} must be a YAML mapping of experiment params (e.g. '
        f'task: {{...}}), got a {type(loaded).__name__}.')
  return loaded


def parse_params_override(text: str, files_allowed: bool = True
                          ) -> Dict[str, Any]:
  """`--params_override` as a nested dict, read as TFMG reads it.

  Args:
    text: inline YAML/JSON, a.b=c,... pairs or (if `files_allowed`) the path
      of a YAML file.
    files_allowed: whether a path is read (not when compiling for Vertex,
      where the path would have to exist in the container).
  """
  if not text.strip():
    return {}
  try:
    parsed = yaml.safe_load(text)
  except yaml.YAMLError:
    parsed = None
  if not isinstance(parsed, dict) and '=' in text:
    # a.b=c pairs, in TFMG's own syntax (this imports TensorFlow).
    from official.modeling.hyperparams import params_dict
    try:
      parsed = yaml.safe_load(params_dict.nested_csv_str_to_json_str(text))
    except (ValueError, yaml.YAMLError):
      parsed = None
  if isinstance(parsed, dict):
    return parsed
  if files_allowed and isinstance(parsed, str) and '\n' not in text:
    return _read_yaml_file(text.strip(), '--params_override file')
  where = '' if files_allowed else ' (a file path is not read when compiling)'
  raise ExperimentOverrideError(
      '--params-override must be inline YAML/JSON, a.b=c pairs or a YAML '
      f'file{where}, got {text!r}.')


def _merge(base: Dict[str, Any], override: Mapping[str, Any]) -> Dict[str, Any]:
  merged = dict(base)
  for key, value in override.items():
    if isinstance(value, dict) and isinstance(merged.get(key), dict):
      merged[key] = _merge(merged[key], value)
    else:
      merged[key] = value
  return merged


def sources(config_files: Sequence[str] = (), params_override: str = '',
            files_allowed: bool = True) -> List[Tuple[str, Dict[str, Any]]]:
  """(name, override) of each source, in the order TFMG applies them."""
  named = [(f'--config_file {path}', _read_yaml_file(path, '--config_file'))
           for path in config_files]
  if params_override.strip():
    named.append(('--params_override',
                  parse_params_override(params_override, files_allowed)))
  return named


def merged_override(config_files: Sequence[str] = (),
                    params_override: str = '',
                    files_allowed: bool = True) -> Dict[str, Any]:
  """All sources as one override dict (later sources win)."""
  return _merge_all(sources(config_files, params_override, files_allowed))


def _merge_all(named_sources: Sequence[Tuple[str, Mapping[str, Any]]]
               ) -> Dict[str, Any]:
  merged: Dict[str, Any] = {}
  for _, override in named_sources:
    merged = _merge(merged, override)
  return merged


def _unknown_keys(override: Mapping[str, Any], reference: Mapping[str, Any],
                  prefix: str = '') -> List[str]:
  unknown = []
  for key, value in override.items():
    if key not in reference:
      unknown.append(prefix + str(key))
    elif isinstance(value, dict) and isinstance(reference[key], dict):
      unknown.extend(_unknown_keys(value, reference[key], f'{prefix}{key}.'))
  return unknown


def check_against_experiment(experiment: str,
                             named_sources: Sequence[Tuple[str, Mapping[str, Any]]]
                             ) -> None:
  """Applies each source to the experiment in order, strictly, as TFMG does.

  Raises:
    ExperimentOverrideError: naming the source (file) and the key the
      experiment does not have, or the value TFMG refused.
  """
  try:
    params = pipeline_config.experiment_params(experiment)
  except ValueError as error:
    raise ExperimentOverrideError(str(error)) from None
  for name, override in named_sources:
    unknown = _unknown_keys(override, params.as_dict())
    if unknown:
      raise ExperimentOverrideError(
          f'{name}: the experiment {experiment} has no param '
          f'{", ".join(unknown)}.')
    try:
      params.override(override, is_strict=True)
    except (KeyError, ValueError, TypeError, AttributeError) as error:
      raise ExperimentOverrideError(
          f'{name}: {" ".join(str(error).split())}') from None


def resolve(experiment: str, config_files: Optional[Sequence[str]] = None,
            params_override: str = '', files_allowed: bool = True) -> str:
  """The one JSON override of the config files and `params_override`,
  checked against the experiment ('' when there is nothing to override)."""
  named = sources(config_files or (), params_override, files_allowed)
  if not named:
    return ''
  check_against_experiment(experiment, named)
  return json.dumps(_merge_all(named), sort_keys=True)
