"""What the rehearsal substitutes for the image, Dataflow and accelerators.

Each function returns the substituted value and human-readable lines saying
what was replaced by what; the task runner prints them.
"""

import argparse
import json
import os
import pathlib
import sys
from typing import Any, Dict, List, Sequence, Tuple

from runners.vertex import settings as vertex_settings
from tfx_pipeline import config as pipeline_config

REPO_ROOT = str(pathlib.Path(__file__).resolve().parents[2])
# The flags of TFX's container entrypoints; every other argument is a Beam one.
ENTRYPOINT_FLAGS = ('--executor_class_path', '--json_serialized_invocation_args',
                    '--json_serialized_inputs_spec_args')
# Beam on this machine: what `maskformer-tfx run` uses.
LOCAL_BEAM_ARGS = ('--runner=DirectRunner',
                   *pipeline_config.DEFAULT_LOCAL_BEAM_ARGS)
# The TFMG runtime of the Trainer's worker on this machine's CPU.
CPU_RUNTIME = {'distribution_strategy': 'one_device', 'num_gpus': 0,
               'mixed_precision_dtype': 'float32'}
_ACCELERATOR_RUNTIME_KEYS = ('distribution_strategy', 'tpu', 'num_gpus',
                             'mixed_precision_dtype')


def interpreter(command: Sequence[str], where: str) -> Tuple[List[str], List[str]]:
  """The image's `python` -> this environment's interpreter."""
  command = list(command)
  if command and command[0] in ('python', 'python3'):
    return ([sys.executable] + command[1:],
            [f'{where}: image interpreter {command[0]!r} -> {sys.executable} '
             '(this project\'s .venv stands in for the image)'])
  return command, []


def image_paths(text: str) -> str:
  """The image's package directory (/pipeline) -> this repository."""
  prefix = vertex_settings.IMAGE_PACKAGE_DIR.rstrip('/') + '/'
  if text.startswith(prefix):
    return os.path.join(REPO_ROOT, text[len(prefix):])
  return text


def _dataflow_option_names() -> Dict[str, bool]:
  """Option strings of Beam's Google Cloud, worker, runner, SDK-location and
  experiment options -> whether the option takes a value."""
  from apache_beam.options import pipeline_options
  parser = argparse.ArgumentParser(add_help=False)
  for options_class in (pipeline_options.GoogleCloudOptions,
                        pipeline_options.WorkerOptions):
    options_class._add_argparse_args(parser)
  names = {}
  for action in parser._actions:
    for option in action.option_strings:
      names[option] = action.nargs != 0
  names.update({'--runner': True, '--sdk_location': True,
                '--experiments': True, '--experiment': True})
  return names


def split_entrypoint_args(args: Sequence[str]) -> Tuple[List[str], List[str]]:
  """(entrypoint flags with their values, Beam arguments) of compiled args."""
  entrypoint, beam = [], []
  args = list(args)
  i = 0
  while i < len(args):
    if args[i] in ENTRYPOINT_FLAGS and i + 1 < len(args):
      entrypoint.extend(args[i:i + 2])
      i += 2
    else:
      beam.append(args[i])
      i += 1
  return entrypoint, beam


def beam_args(args: Sequence[str], where: str) -> Tuple[List[str], List[str]]:
  """Dataflow arguments -> Beam's DirectRunner.

  Drops the runner and every Google Cloud / Dataflow worker option (project,
  region, staging and temp locations, machine type, workers, SDK container,
  experiments) and appends the local DirectRunner arguments. Other Beam
  arguments stay.
  """
  if not args:
    return [], []
  dataflow = _dataflow_option_names()
  kept, dropped = [], []
  i = 0
  while i < len(args):
    name = args[i].split('=', 1)[0]
    if name in dataflow:
      takes_value = dataflow[name] and '=' not in args[i]
      dropped.extend(args[i:i + (2 if takes_value else 1)])
      i += 2 if takes_value else 1
    else:
      kept.append(args[i])
      i += 1
  result = kept + list(LOCAL_BEAM_ARGS)
  note = (f'{where}: Dataflow -> Beam DirectRunner: dropped '
          f'{" ".join(dropped) or "nothing"}; added {" ".join(LOCAL_BEAM_ARGS)}')
  return result, [note]


def cpu_runtime(params_override: str) -> Tuple[str, Dict[str, Any]]:
  """A Trainer params override (JSON) with the accelerator runtime replaced
  by the CPU one; returns it and the runtime it replaced."""
  override = json.loads(params_override) if params_override.strip() else {}
  runtime = dict(override.get('runtime') or {})
  replaced = {key: runtime.pop(key) for key in _ACCELERATOR_RUNTIME_KEYS
              if key in runtime}
  override['runtime'] = {**runtime, **CPU_RUNTIME}
  return json.dumps(override, sort_keys=True), replaced


def trainer_exec_properties(exec_properties_json: str,
                            where: str) -> Tuple[str, List[str]]:
  """The Trainer's `--exec-properties` with the CPU runtime (see
  `cpu_runtime`) in its custom_config's params_override."""
  exec_properties = json.loads(exec_properties_json)
  custom_config = exec_properties.get('custom_config')
  as_text = isinstance(custom_config, str)
  config = json.loads(custom_config) if as_text else dict(custom_config or {})
  override, replaced = cpu_runtime(config.get('params_override') or '')
  config['params_override'] = override
  exec_properties['custom_config'] = (json.dumps(config, sort_keys=True)
                                      if as_text else config)
  note = (f'{where}: accelerator runtime '
          f'{json.dumps(replaced, sort_keys=True)} -> CPU '
          f'{json.dumps(CPU_RUNTIME, sort_keys=True)}')
  return json.dumps(exec_properties, sort_keys=True), [note]
