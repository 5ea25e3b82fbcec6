"""The Trainer's Vertex AI Training worker pool and what follows from it:
the custom job's worker-pool spec, the Trainer's `custom_config` entries for
`tfx.extensions.google_cloud_ai_platform.Trainer`, and the TFMG runtime
(TPU or mirrored strategy, precision) merged into the experiment override.
"""

from typing import Any, Dict, Mapping

from runners.vertex import accelerators
from runners.vertex.settings import VertexSettings
from runners.vertex.settings import VertexSettingsError
from tfx_pipeline import experiment_overrides

# Keys of `tfx.extensions.google_cloud_ai_platform` (constants.py and
# trainer/executor.py of TFX 1.16); spelled out so that importing this module
# does not import TFX.
ENABLE_VERTEX_KEY = 'ai_platform_enable_vertex'
VERTEX_REGION_KEY = 'ai_platform_vertex_region'
TRAINING_ARGS_KEY = 'ai_platform_training_args'

# TFMG runtime keys that follow from the worker pool; the experiment override
# may not contradict them.
_HARDWARE_RUNTIME_KEYS = ('distribution_strategy', 'tpu', 'num_gpus')


def _accelerator_count(settings: VertexSettings) -> int:
  return accelerators.accelerator_count(settings.trainer_machine_type,
                                        settings.accelerator_type,
                                        settings.accelerator_count)


def worker_pool_spec(settings: VertexSettings) -> Dict[str, Any]:
  """The Vertex AI custom job's worker pool (one replica)."""
  machine_spec: Dict[str, Any] = {
      'machine_type': settings.trainer_machine_type,
      'accelerator_type': settings.accelerator_type,
      'accelerator_count': _accelerator_count(settings),
  }
  if settings.uses_tpu:
    machine_spec['tpu_topology'] = (
        settings.tpu_topology
        or accelerators.TPU_SLICES[settings.trainer_machine_type].topology)
  return {
      'machine_spec': machine_spec,
      'replica_count': 1,
      'container_spec': {'image_uri': settings.training_image},
  }


def vertex_training_config(settings: VertexSettings) -> Dict[str, Any]:
  """The Trainer's custom_config entries for Vertex AI Training.

  `ai_platform_training_args` is a Vertex AI CustomJob (snake_case field
  names, as the TFX extension passes it to the Vertex API) plus the project;
  the extension sets the container command itself.
  """
  job_spec: Dict[str, Any] = {'worker_pool_specs': [worker_pool_spec(settings)]}
  if settings.service_account:
    job_spec['service_account'] = settings.service_account
  return {
      ENABLE_VERTEX_KEY: True,
      VERTEX_REGION_KEY: settings.region,
      TRAINING_ARGS_KEY: {
          'project': settings.project,
          'job_spec': job_spec,
          'labels': {'pipeline': settings.pipeline_name},
      },
  }


def _runtime_override(settings: VertexSettings,
                      user_runtime: Mapping[str, Any]) -> Dict[str, Any]:
  """The TFMG runtime that the worker pool needs."""
  default_dtype = 'bfloat16'
  if settings.accelerator_type in accelerators.GPUS_WITHOUT_BFLOAT16:
    default_dtype = 'float32'
  dtype = (settings.mixed_precision_dtype
           or user_runtime.get('mixed_precision_dtype') or default_dtype)
  if settings.uses_tpu:
    # A single-host TPU VM: TF addresses its chips as the 'local' TPU
    # (TPUClusterResolver(tpu='local'); TFMG then skips connect_to_cluster).
    return {'distribution_strategy': 'tpu', 'tpu': 'local',
            'mixed_precision_dtype': dtype}
  return {'distribution_strategy': 'mirrored',
          'num_gpus': _accelerator_count(settings),
          'mixed_precision_dtype': dtype}


def trainer_params_override(settings: VertexSettings) -> Dict[str, Any]:
  """The experiment override: the settings' own plus the worker pool runtime.

  The override is the `--config-file`s, then `--params-override`, merged.

  Raises:
    VertexSettingsError: a config file is unreadable, the override is not
      inline, or it sets a runtime that contradicts the worker pool (e.g.
      mirrored on a TPU).
  """
  try:
    override = experiment_overrides.merged_override(
        settings.config_files, settings.params_override, files_allowed=False)
  except experiment_overrides.ExperimentOverrideError as error:
    raise VertexSettingsError(str(error)) from None
  user_runtime = override.get('runtime') or {}
  if not isinstance(user_runtime, dict):
    raise VertexSettingsError('--params-override: runtime must be a mapping.')
  runtime = _runtime_override(settings, user_runtime)
  conflicts = [
      f'runtime.{key}={user_runtime[key]!r} (the worker pool needs '
      f'{runtime[key]!r})'
      for key in (*_HARDWARE_RUNTIME_KEYS, 'mixed_precision_dtype')
      if key in user_runtime and key in runtime
      and user_runtime[key] != runtime[key]]
  if conflicts:
    raise VertexSettingsError(
        '--params-override contradicts the Trainer\'s worker pool '
        f'({settings.trainer_machine_type}, {settings.accelerator_type}): '
        + '; '.join(conflicts) + '.')
  return {**override, 'runtime': {**user_runtime, **runtime}}
