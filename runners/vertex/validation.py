"""Validation of `VertexSettings`: one message naming every wrong or missing
setting, before anything is compiled or submitted.

`validate` checks a `VertexSettings` object, which may come from a YAML file
as well as from flags, so its counts are checked here rather than by an
argparse type.
"""

import typing
import re
from typing import Any, List, Mapping, Optional

from runners.vertex import accelerators
from runners.vertex import worker_pool
from runners.vertex.settings import VertexSettings
from runners.vertex.settings import VertexSettingsError
from runners.vertex.settings import flag_name
from runners.vertex.settings import read_settings
from runners.vertex.settings import setting_fields
from tfx_pipeline import config as pipeline_config
from tfx_pipeline import spans

MIXED_PRECISION_DTYPES = ('bfloat16', 'float16', 'float32')

_PROJECT_RE = re.compile(r'([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]')
_REGION_RE = re.compile(r'[a-z]+(-[a-z]+)+[0-9]+')
_ZONE_RE = re.compile(r'[a-z]+(-[a-z]+)+[0-9]+-[a-z]')
_GCS_RE = re.compile(r'gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?')
_IMAGE_RE = re.compile(
    r'(?P<host>[a-z0-9-]+(\.[a-z0-9-]+)+(:[0-9]+)?)/[a-z0-9._/-]+'
    r'(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?')
_SERVICE_ACCOUNT_RE = re.compile(r'[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com')
_TOPOLOGY_RE = re.compile(r'[0-9]+(x[0-9]+){1,2}')
_PIPELINE_NAME_RE = re.compile(r'[a-z0-9][a-z0-9-]{0,127}')


def load_settings(config_file: Optional[str] = None,
                  overrides: Optional[Mapping[str, Any]] = None
                  ) -> VertexSettings:
  """Settings from an optional YAML file, then `overrides`; validated.

  Raises:
    VertexSettingsError: unreadable file, unknown keys or invalid settings.
  """
  settings = read_settings(config_file, overrides)
  validate(settings)
  return settings


def _is_local_path(value: str) -> bool:
  return value.startswith(('/', './', '../', '~')) or value in ('.', '..')


def _type_problems(settings: VertexSettings) -> List[str]:
  """Values of the wrong type (e.g. from YAML)."""
  problems = []
  hints = typing.get_type_hints(VertexSettings)
  for field in setting_fields():
    value = getattr(settings, field.name)
    expected = hints[field.name]
    if typing.get_origin(expected) is typing.Union:
      if value is None:
        continue
      expected = typing.get_args(expected)[0]
    if typing.get_origin(expected) is list:
      ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
    elif expected is float:
      ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
      ok = isinstance(value, int) and not isinstance(value, bool)
    else:
      ok = isinstance(value, expected)
    if not ok:
      problems.append(f'{field.name} ({flag_name(field)}) must be of type '
                      f'{getattr(expected, "__name__", expected)}, got '
                      f'{value!r}.')
  return problems


def _gcs_problem(name: str, flag: str, value: Optional[str],
                 required: bool) -> Optional[str]:
  if not value:
    return f'{name} ({flag}) is required.' if required else None
  if not _GCS_RE.fullmatch(value):
    return (f'{name} ({flag}) must be a gs://BUCKET/PATH location that Vertex '
            f'AI and Dataflow can reach, got {value!r}.')
  return None


def validate(settings: VertexSettings) -> None:
  """Raises VertexSettingsError naming every wrong or missing setting."""
  problems = _type_problems(settings)
  if problems:
    raise VertexSettingsError(_message(problems))
  if not _PIPELINE_NAME_RE.fullmatch(settings.pipeline_name):
    problems.append(f'--pipeline-name {settings.pipeline_name!r} must be '
                    'lowercase letters, digits and hyphens (Vertex AI).')
  if not settings.experiment:
    problems.append('--experiment is required.')
  if not settings.project:
    problems.append('project (--project) is required.')
  elif not _PROJECT_RE.fullmatch(settings.project):
    problems.append(f'project (--project) {settings.project!r} is not a Google '
                    'Cloud project id (6-30 lowercase letters, digits, '
                    'hyphens).')
  if not settings.region:
    problems.append('region (--region) is required.')
  elif _ZONE_RE.fullmatch(settings.region):
    problems.append(f'region (--region) {settings.region!r} is a zone; give '
                    f'its region, e.g. {settings.region.rsplit("-", 1)[0]!r}.')
  elif not _REGION_RE.fullmatch(settings.region):
    problems.append(f'region (--region) {settings.region!r} is not a Google '
                    'Cloud region such as us-central1.')
  for name, flag, value, required in (
      ('pipeline_root', '--pipeline-root', settings.pipeline_root, True),
      ('data_root', '--data', settings.data_root, True),
      ('push_dir', '--push-dir', settings.push_dir, False),
      ('init_checkpoint', '--init-checkpoint', settings.init_checkpoint,
       False),
      ('drift_schema_file', '--drift-schema', settings.drift_schema_file,
       False)):
    problem = _gcs_problem(name, flag, value, required)
    if problem:
      problems.append(problem)
  for name, flag, value in (('image', '--image', settings.image),
                            ('trainer_image', '--trainer-image',
                             settings.trainer_image)):
    if value is None:
      continue
    if not value:
      problems.append(f'{name} ({flag}) is required.')
    elif not _IMAGE_RE.fullmatch(value):
      problems.append(f'{name} ({flag}) {value!r} is not a container image URI '
                      'in a registry, e.g. '
                      'us-central1-docker.pkg.dev/PROJECT/REPO/maskformer-tfx:TAG.')
  if (settings.service_account is not None
      and not _SERVICE_ACCOUNT_RE.fullmatch(settings.service_account)):
    problems.append(f'service_account (--service-account) '
                    f'{settings.service_account!r} is not a service account '
                    'e-mail (NAME@PROJECT.iam.gserviceaccount.com).')
  problems.extend(accelerators.worker_pool_problems(
      settings.trainer_machine_type, settings.accelerator_type,
      settings.accelerator_count, settings.tpu_topology))
  if (settings.tpu_topology is not None
      and not _TOPOLOGY_RE.fullmatch(settings.tpu_topology)):
    problems.append(f'--tpu-topology {settings.tpu_topology!r} is not of the '
                    'form AxB or AxBxC.')
  if (settings.mixed_precision_dtype is not None
      and settings.mixed_precision_dtype not in MIXED_PRECISION_DTYPES):
    problems.append(f'--mixed-precision-dtype must be one of '
                    f'{", ".join(MIXED_PRECISION_DTYPES)}, got '
                    f'{settings.mixed_precision_dtype!r}.')
  for name in ('dataflow_machine_type', 'transform_machine_type',
               'evaluator_machine_type'):
    value = getattr(settings, name)
    if (not accelerators.MACHINE_TYPE_RE.fullmatch(value)
        or value in accelerators.TPU_SLICES):
      problems.append(f'--{name.replace("_", "-")} {value!r} is not a Compute '
                      'Engine machine type such as n2-highmem-16.')
  for name in ('accelerator_count', 'train_steps', 'eval_steps',
               'dataflow_max_num_workers', 'transform_max_num_workers',
               'evaluator_max_num_workers', 'dataflow_disk_size_gb'):
    value = getattr(settings, name)
    if value is not None and value < 1:
      problems.append(f'--{name.replace("_", "-")} must be at least 1, got '
                      f'{value}.')
  for name in ('pq_lower_bound', 'pq_regression_tolerance'):
    try:
      pipeline_config.check_absolute_pq(f'--{name.replace("_", "-")}',
                                        getattr(settings, name))
    except ValueError as error:
      problems.append(str(error))
  try:
    spans.check_patterns(settings.train_pattern, settings.eval_pattern,
                         settings.span)
  except spans.SpanError as error:
    problems.append(str(error))
  problems.extend(_serving_problems(settings))
  for arg in settings.extra_beam_args:
    name, _, value = arg.partition('=')
    if not name.startswith('--'):
      problems.append(f'--beam-arg {arg!r} must look like --name=value.')
    elif _is_local_path(value):
      problems.append(f'--beam-arg {arg!r} names a path of this machine, '
                      'which Dataflow cannot read.')
  if not problems:
    try:
      worker_pool.trainer_params_override(settings)
    except VertexSettingsError as error:
      problems.append(str(error))
  if problems:
    raise VertexSettingsError(_message(problems))


def _serving_problems(settings: VertexSettings) -> List[str]:
  """Problems of the registry and endpoint settings, naming the flag."""
  problems = []
  if not _IMAGE_RE.fullmatch(settings.serving_image):
    problems.append(f'--serving-image {settings.serving_image!r} is not a '
                    'container image URI in a registry.')
  if settings.registry_model is not None and not (
      0 < len(settings.registry_model) <= 128):
    problems.append('--registry-model must be 1 to 128 characters.')
  if (not accelerators.MACHINE_TYPE_RE.fullmatch(settings.serving_machine_type)
      or settings.serving_machine_type in accelerators.TPU_SLICES):
    problems.append(f'--serving-machine-type '
                    f'{settings.serving_machine_type!r} is not a Compute '
                    'Engine machine type such as n1-standard-4.')
  if settings.min_replicas < 1:
    problems.append(f'--min-replicas must be at least 1, got '
                    f'{settings.min_replicas}.')
  if settings.max_replicas < settings.min_replicas:
    problems.append(f'--max-replicas ({settings.max_replicas}) must be at '
                    f'least --min-replicas ({settings.min_replicas}).')
  if not 1 <= settings.traffic_percent <= 100:
    problems.append(f'--traffic-percent must be 1 to 100, got '
                    f'{settings.traffic_percent}.')
  if settings.endpoint is None:
    changed = [flag for flag, value, default in (
        ('--serving-machine-type', settings.serving_machine_type,
         'n1-standard-4'),
        ('--min-replicas', settings.min_replicas, 1),
        ('--max-replicas', settings.max_replicas, 1),
        ('--traffic-percent', settings.traffic_percent, 100))
        if value != default]
    if changed:
      problems.append(f'{", ".join(changed)} need --endpoint.')
  elif not 0 < len(settings.endpoint) <= 128:
    problems.append('--endpoint must be 1 to 128 characters.')
  return problems


def _message(problems: List[str]) -> str:
  return 'Invalid Vertex settings:\n' + '\n'.join(f'  - {p}' for p in problems)
