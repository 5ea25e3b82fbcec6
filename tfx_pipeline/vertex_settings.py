"""Settings of a Google Cloud deployment and what they compile to.

A `VertexSettings` holds everything that differs between a local run and a
Vertex AI Pipelines run: project, region, buckets, the container image, the
Dataflow machines of the Beam components, the Vertex AI Training worker pool
of the Trainer (TPU v5e by default, or GPUs) and the evaluation thresholds.
Settings come from an optional YAML file (keys are the field names) with
command-line flags on top, and `validate` rejects wrong or missing ones with
one message naming every problem, before anything is compiled or submitted.

From valid settings this module derives:
  * `dataflow_beam_pipeline_args`: DataflowRunner arguments of every Beam
    component, and `component_beam_pipeline_args`: the larger machines of
    Transform and Evaluator;
  * `vertex_training_config`: the Trainer's custom_config entries that make
    `tfx.extensions.google_cloud_ai_platform.Trainer` run a Vertex AI custom
    job on the worker pool;
  * `trainer_params_override`: the TFMG runtime (TPU or mirrored strategy)
    that matches the worker pool, merged into the experiment's override;
  * `to_pipeline_config`: the `PipelineConfig` that `create_pipeline` builds
    the Vertex pipeline from.

Nothing here talks to Google Cloud, and only a.b=c style params overrides
import TensorFlow (TFMG parses them).
"""

import dataclasses
import json
import posixpath
import re
import typing
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from schemas import RAW_SCHEMA_FILE
from tfx_pipeline import config as config_lib

# Where the Dockerfile puts this repository inside the image (an editable
# install, so the installed package files are these).
IMAGE_PACKAGE_DIR = '/pipeline'
# The curated raw schema as ImportSchemaGen reads it on Vertex.
IMAGE_SCHEMA_FILE = posixpath.join(IMAGE_PACKAGE_DIR, 'schemas', RAW_SCHEMA_FILE)

DEFAULT_VERTEX_EXPERIMENT = 'maskformer_coco_panoptic'

# The Evaluator's TFX component id and Transform's: they get larger machines.
TRANSFORM_COMPONENT_ID = 'Transform'
EVALUATOR_COMPONENT_ID = 'Evaluator'

# Keys of `tfx.extensions.google_cloud_ai_platform` (constants.py and
# trainer/executor.py of TFX 1.16); spelled out so that importing this module
# does not import TFX.
ENABLE_VERTEX_KEY = 'ai_platform_enable_vertex'
VERTEX_REGION_KEY = 'ai_platform_vertex_region'
TRAINING_ARGS_KEY = 'ai_platform_training_args'


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  """A single-host TPU VM slice that Vertex AI Training offers."""
  machine_type: str
  accelerator_type: str
  chips: int
  topology: str


# Single-host TPU VM slices (one worker, all chips local, addressed by TF as
# the 'local' TPU). Multi-host slices need multi-worker TPU set-up that the
# trainer does not do.
TPU_SLICES: Mapping[str, TpuSlice] = {
    s.machine_type: s for s in (
        TpuSlice('ct5lp-hightpu-1t', 'TPU_V5_LITEPOD', 1, '1x1'),
        TpuSlice('ct5lp-hightpu-4t', 'TPU_V5_LITEPOD', 4, '2x2'),
        TpuSlice('ct5lp-hightpu-8t', 'TPU_V5_LITEPOD', 8, '2x4'),
        TpuSlice('ct4p-hightpu-4t', 'TPU_V4_POD', 4, '2x2x1'),
    )
}
TPU_ACCELERATOR_TYPES = tuple(sorted({s.accelerator_type
                                      for s in TPU_SLICES.values()}))

# The NVIDIA accelerator types of Vertex AI (google.cloud.aiplatform_v1
# AcceleratorType) and the machine families that carry them. Machine types of
# other families are passed through unchecked.
GPU_ACCELERATOR_TYPES = (
    'NVIDIA_TESLA_K80', 'NVIDIA_TESLA_P100', 'NVIDIA_TESLA_V100',
    'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_T4', 'NVIDIA_TESLA_A100',
    'NVIDIA_A100_80GB', 'NVIDIA_L4', 'NVIDIA_H100_80GB',
    'NVIDIA_H100_MEGA_80GB', 'NVIDIA_H200_141GB', 'NVIDIA_B200',
    'NVIDIA_GB200', 'NVIDIA_RTX_PRO_6000',
)
GPU_MACHINE_FAMILIES: Mapping[str, Tuple[str, ...]] = {
    'a2-highgpu': ('NVIDIA_TESLA_A100',),
    'a2-megagpu': ('NVIDIA_TESLA_A100',),
    'a2-ultragpu': ('NVIDIA_A100_80GB',),
    'a3-highgpu': ('NVIDIA_H100_80GB',),
    'a3-megagpu': ('NVIDIA_H100_MEGA_80GB',),
    'a3-ultragpu': ('NVIDIA_H200_141GB',),
    'g2-standard': ('NVIDIA_L4',),
    'n1-standard': ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                    'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_K80'),
    'n1-highmem': ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                   'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_K80'),
    'n1-highcpu': ('NVIDIA_TESLA_T4', 'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P100',
                   'NVIDIA_TESLA_P4', 'NVIDIA_TESLA_K80'),
}
# GPUs without fast bfloat16 (before Ampere): they train in float32 unless the
# settings say otherwise.
GPUS_WITHOUT_BFLOAT16 = ('NVIDIA_TESLA_K80', 'NVIDIA_TESLA_P100',
                         'NVIDIA_TESLA_V100', 'NVIDIA_TESLA_P4',
                         'NVIDIA_TESLA_T4')
MIXED_PRECISION_DTYPES = ('bfloat16', 'float16', 'float32')

# TFMG runtime keys that follow from the worker pool; the experiment override
# may not contradict them.
_HARDWARE_RUNTIME_KEYS = ('distribution_strategy', 'tpu', 'num_gpus')

_PROJECT_RE = re.compile(r'([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]')
_REGION_RE = re.compile(r'[a-z]+(-[a-z]+)+[0-9]+')
_ZONE_RE = re.compile(r'[a-z]+(-[a-z]+)+[0-9]+-[a-z]')
_GCS_RE = re.compile(r'gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9](/.*)?')
_IMAGE_RE = re.compile(
    r'(?P<host>[a-z0-9-]+(\.[a-z0-9-]+)+(:[0-9]+)?)/[a-z0-9._/-]+'
    r'(:[A-Za-z0-9._-]+)?(@sha256:[0-9a-f]{64})?')
_SERVICE_ACCOUNT_RE = re.compile(r'[a-z0-9-]+@[a-z0-9.-]+\.gserviceaccount\.com')
_MACHINE_TYPE_RE = re.compile(
    r'[a-z][a-z0-9]*-(standard|highmem|highcpu|ultramem|megamem|hightpu|'
    r'highgpu|megagpu|ultragpu)-[0-9]+[a-z]*|[a-z0-9]+-custom-[0-9]+-[0-9]+(-ext)?'
    r'|cloud-tpu')
_TOPOLOGY_RE = re.compile(r'[0-9]+(x[0-9]+){1,2}')
_PIPELINE_NAME_RE = re.compile(r'[a-z0-9][a-z0-9-]{0,127}')


class VertexSettingsError(ValueError):
  """Wrong or missing settings; the message names every problem."""


def _setting(default: Any, help_text: str, flag: Optional[str] = None) -> Any:
  """A settings field with its --help text (and its flag, if not the name)."""
  metadata = {'help': help_text}
  if flag:
    metadata['flag'] = flag
  if isinstance(default, list):
    return dataclasses.field(default_factory=lambda: list(default),
                             metadata=metadata)
  return dataclasses.field(default=default, metadata=metadata)


@dataclasses.dataclass
class VertexSettings:
  """Settings of one Vertex AI Pipelines deployment (see module docstring)."""
  # Where.
  project: str = _setting('', 'Google Cloud project id (required).')
  region: str = _setting(
      '', 'Region of Vertex AI Pipelines, Vertex AI Training and Dataflow, '
      'e.g. us-central1 (required; a region, not a zone).')
  pipeline_root: str = _setting(
      '', 'gs:// directory for artifacts, Dataflow temp files and pushed '
      'models (required).')
  data_root: str = _setting(
      '', 'gs:// directory of TFMG COCO panoptic TFRecords (required).',
      flag='--data')
  image: str = _setting(
      '', 'Pipeline container image URI (the Dockerfile\'s `pipeline` target '
      'pushed to Artifact Registry): every pipeline step and the Dataflow '
      'workers run it (required).')
  trainer_image: Optional[str] = _setting(
      None, 'Image of the Vertex AI Training worker pool (default: --image). '
      'TPU training needs the Dockerfile\'s `tpu-trainer` target, GPU '
      'training its `gpu-trainer` target.')
  service_account: Optional[str] = _setting(
      None, 'Service account e-mail that the pipeline, the training job and '
      'the Dataflow workers run as (default: the Compute Engine default '
      'service account).')
  pipeline_name: str = _setting(config_lib.DEFAULT_PIPELINE_NAME,
                                'Pipeline name (ML Metadata context).')
  # Data.
  train_pattern: str = _setting('train-*',
                                'File pattern of the train split under --data.')
  eval_pattern: str = _setting('val-*',
                               'File pattern of the eval split under --data.')
  materialize: bool = _setting(
      False, 'Whether Transform writes transformed examples (off at COCO '
      'scale: the Trainer applies the transform graph on the fly).')
  # Training.
  experiment: str = _setting(DEFAULT_VERTEX_EXPERIMENT,
                             'TF Model Garden experiment the Trainer runs.')
  params_override: str = _setting(
      '', 'Inline YAML/JSON or a.b=c,... pairs overriding the experiment '
      'params; its runtime must not contradict the worker pool.')
  train_steps: Optional[int] = _setting(
      None, 'Trainer steps (default: the experiment\'s).')
  eval_steps: Optional[int] = _setting(
      None, 'Trainer evaluation steps (default: the whole eval split).')
  init_checkpoint: Optional[str] = _setting(
      None, 'gs:// checkpoint prefix or directory (its latest checkpoint) a '
      'new training run initialises the backbone from (default: the '
      'experiment\'s, TF Model Garden\'s ImageNet ResNet-50 for '
      'maskformer_coco_panoptic).')
  trainer_machine_type: str = _setting(
      'ct5lp-hightpu-4t', 'Machine type of the Vertex AI Training worker '
      f'pool. TPU VMs: {", ".join(TPU_SLICES)}; GPU machines, e.g. '
      'a2-highgpu-1g, with a NVIDIA_* --accelerator-type.')
  accelerator_type: str = _setting(
      'TPU_V5_LITEPOD', 'Accelerator of the worker pool: '
      f'{", ".join(TPU_ACCELERATOR_TYPES)} (TPUStrategy) or NVIDIA_* '
      '(MirroredStrategy), e.g. NVIDIA_TESLA_A100.')
  accelerator_count: Optional[int] = _setting(
      None, 'Accelerators per worker (default: the TPU slice\'s chips, or N '
      'of a GPU machine type ending in -Ng).')
  tpu_topology: Optional[str] = _setting(
      None, 'TPU slice topology, e.g. 2x2 (default: the machine type\'s).')
  mixed_precision_dtype: Optional[str] = _setting(
      None, 'Training precision: bfloat16, float16 or float32 (default: '
      'bfloat16; float32 on GPUs before Ampere).')
  # Evaluation.
  pq_lower_bound: float = _setting(
      config_lib.DEFAULT_PQ_LOWER_BOUND,
      'The Evaluator blesses a model only if its PQ (0..1) is at least this.')
  pq_regression_tolerance: float = _setting(
      config_lib.DEFAULT_PQ_REGRESSION_TOLERANCE,
      '... and at most this much (absolute PQ, 0..1) below the last blessed '
      'model\'s PQ.')
  warm_start: bool = _setting(
      False, 'Initialise the model from the last blessed model (TFX '
      'base_model) instead of the experiment\'s initialisation.')
  push_dir: Optional[str] = _setting(
      None, 'gs:// directory where the Pusher copies blessed models (default: '
      'PIPELINE_ROOT/pushed_models).')
  # Dataflow.
  dataflow_machine_type: str = _setting(
      'n2-standard-8', 'Dataflow machine type of ExampleGen and '
      'StatisticsGen (and any other Beam component).')
  transform_machine_type: str = _setting(
      'n2-highmem-16', 'Dataflow machine type of Transform (high memory: '
      'it decodes and resizes full images and masks).')
  evaluator_machine_type: str = _setting(
      'n2-highmem-16', 'Dataflow machine type of Evaluator (high memory: '
      'it runs the model on full-size images).')
  dataflow_max_num_workers: int = _setting(
      10, 'Dataflow autoscaling limit of ExampleGen and StatisticsGen.')
  transform_max_num_workers: int = _setting(
      50, 'Dataflow autoscaling limit of Transform.')
  evaluator_max_num_workers: int = _setting(
      20, 'Dataflow autoscaling limit of Evaluator.')
  dataflow_disk_size_gb: int = _setting(100,
                                        'Boot disk of each Dataflow worker.')
  dataflow_subnetwork: Optional[str] = _setting(
      None, 'Dataflow subnetwork, e.g. regions/REGION/subnetworks/NAME '
      '(default: the default network).')
  extra_beam_args: List[str] = _setting(
      [], 'Further Beam/Dataflow argument (--name=value) for every Beam '
      'component; repeatable.', flag='--beam-arg')
  enable_cache: bool = _setting(
      False, 'Let Vertex AI Pipelines reuse outputs of identical earlier '
      'executions.')

  @property
  def training_image(self) -> str:
    """The image of the Vertex AI Training worker pool."""
    return self.trainer_image or self.image

  @property
  def uses_tpu(self) -> bool:
    return self.accelerator_type in TPU_ACCELERATOR_TYPES


def setting_fields() -> Tuple[dataclasses.Field, ...]:
  """The fields of `VertexSettings`, in declaration order."""
  return dataclasses.fields(VertexSettings)


def flag_name(field: dataclasses.Field) -> str:
  """The command-line flag of a settings field."""
  return field.metadata.get('flag', '--' + field.name.replace('_', '-'))


def load_settings(config_file: Optional[str] = None,
                  overrides: Optional[Mapping[str, Any]] = None
                  ) -> VertexSettings:
  """Settings from an optional YAML file, then `overrides`; validated.

  Args:
    config_file: local YAML file whose keys are `VertexSettings` field names.
    overrides: field values that replace the file's (None values are
      ignored, so unset flags keep the file's or the default value).

  Raises:
    VertexSettingsError: unreadable file, unknown keys or invalid settings.
  """
  values: Dict[str, Any] = {}
  if config_file:
    try:
      with open(config_file, encoding='utf-8') as f:
        loaded = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as error:
      raise VertexSettingsError(
          f'Cannot read the settings file {config_file}: {error}') from error
    if loaded is not None and not isinstance(loaded, dict):
      raise VertexSettingsError(
          f'The settings file {config_file} must be a YAML mapping of '
          'setting names to values.')
    values.update(loaded or {})
  values.update({key: value for key, value in (overrides or {}).items()
                 if value is not None})
  known = {field.name for field in setting_fields()}
  unknown = sorted(set(values) - known)
  if unknown:
    raise VertexSettingsError(
        f'Unknown settings: {", ".join(unknown)}. Known settings: '
        f'{", ".join(sorted(known))}.')
  settings = VertexSettings(**values)
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


def _accelerator_problems(settings: VertexSettings) -> List[str]:
  """The worker pool: known accelerator, machine type that carries it."""
  machine = settings.trainer_machine_type
  accelerator = settings.accelerator_type
  count = settings.accelerator_count
  if accelerator in TPU_ACCELERATOR_TYPES:
    tpu_slice = TPU_SLICES.get(machine)
    if tpu_slice is None or tpu_slice.accelerator_type != accelerator:
      choices = ', '.join(s.machine_type for s in TPU_SLICES.values()
                          if s.accelerator_type == accelerator)
      return [f'--trainer-machine-type {machine!r} is not a single-host TPU VM '
              f'with {accelerator}; use one of: {choices}.']
    problems = []
    if count is not None and count != tpu_slice.chips:
      problems.append(f'--accelerator-count {count} does not match {machine}, '
                      f'which has {tpu_slice.chips} TPU chips.')
    if (settings.tpu_topology is not None
        and settings.tpu_topology != tpu_slice.topology):
      problems.append(f'--tpu-topology {settings.tpu_topology!r} does not '
                      f'match {machine}, whose topology is '
                      f'{tpu_slice.topology!r}.')
    return problems
  if accelerator.startswith('TPU_'):
    return [f'Unknown or unsupported TPU type --accelerator-type '
            f'{accelerator!r}; supported: {", ".join(TPU_ACCELERATOR_TYPES)}.']
  if accelerator not in GPU_ACCELERATOR_TYPES:
    return [f'Unknown --accelerator-type {accelerator!r}; use a TPU type '
            f'({", ".join(TPU_ACCELERATOR_TYPES)}) or a GPU type '
            f'({", ".join(GPU_ACCELERATOR_TYPES)}).']
  problems = []
  if settings.tpu_topology is not None:
    problems.append('--tpu-topology applies to TPU accelerators only.')
  family = machine.rsplit('-', 1)[0]
  if machine in TPU_SLICES or not _MACHINE_TYPE_RE.fullmatch(machine):
    problems.append(f'--trainer-machine-type {machine!r} is not a GPU '
                    f'machine type for {accelerator}.')
  elif family in GPU_MACHINE_FAMILIES and (
      accelerator not in GPU_MACHINE_FAMILIES[family]):
    problems.append(f'{machine} machines carry '
                    f'{" or ".join(GPU_MACHINE_FAMILIES[family])}, not '
                    f'{accelerator}.')
  built_in = re.fullmatch(r'[a-z0-9]+-[a-z]+gpu-([0-9]+)g', machine)
  if built_in and count is not None and count != int(built_in.group(1)):
    problems.append(f'--accelerator-count {count} does not match {machine}, '
                    f'which has {built_in.group(1)} GPUs.')
  if not built_in and count is None:
    problems.append(f'--accelerator-count is required for {machine}.')
  return problems


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
  problems.extend(_accelerator_problems(settings))
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
    if not _MACHINE_TYPE_RE.fullmatch(value) or value in TPU_SLICES:
      problems.append(f'--{name.replace("_", "-")} {value!r} is not a Compute '
                      'Engine machine type such as n2-highmem-16.')
  for name in ('accelerator_count', 'train_steps', 'eval_steps',
               'dataflow_max_num_workers', 'transform_max_num_workers',
               'evaluator_max_num_workers', 'dataflow_disk_size_gb'):
    value = getattr(settings, name)
    if value is not None and value < 1:
      problems.append(f'--{name.replace("_", "-")} must be at least 1, got '
                      f'{value}.')
  if not 0.0 <= settings.pq_lower_bound <= 1.0:
    problems.append('--pq-lower-bound is a PQ fraction in [0, 1], got '
                    f'{settings.pq_lower_bound}.')
  if not 0.0 <= settings.pq_regression_tolerance <= 1.0:
    problems.append('--pq-regression-tolerance is an absolute PQ in [0, 1], '
                    f'got {settings.pq_regression_tolerance}.')
  for arg in settings.extra_beam_args:
    name, _, value = arg.partition('=')
    if not name.startswith('--'):
      problems.append(f'--beam-arg {arg!r} must look like --name=value.')
    elif _is_local_path(value):
      problems.append(f'--beam-arg {arg!r} names a path of this machine, '
                      'which Dataflow cannot read.')
  if not problems:
    try:
      trainer_params_override(settings)
    except VertexSettingsError as error:
      problems.append(str(error))
  if problems:
    raise VertexSettingsError(_message(problems))


def _message(problems: List[str]) -> str:
  return 'Invalid Vertex settings:\n' + '\n'.join(f'  - {p}' for p in problems)


def dataflow_beam_pipeline_args(settings: VertexSettings) -> List[str]:
  """DataflowRunner arguments of every Beam component.

  Dataflow runs the pipeline image as SDK container (Runner v2), so the
  workers have this package and its pinned dependencies; temp and staging
  files go under the pipeline root.
  """
  root = settings.pipeline_root.rstrip('/')
  args = [
      '--runner=DataflowRunner',
      f'--project={settings.project}',
      f'--region={settings.region}',
      f'--temp_location={root}/tmp/dataflow',
      f'--staging_location={root}/tmp/dataflow-staging',
      f'--machine_type={settings.dataflow_machine_type}',
      f'--max_num_workers={settings.dataflow_max_num_workers}',
      f'--disk_size_gb={settings.dataflow_disk_size_gb}',
      f'--sdk_container_image={settings.image}',
      '--sdk_location=container',
      '--experiments=use_runner_v2',
  ]
  if settings.service_account:
    args.append(f'--service_account_email={settings.service_account}')
  if settings.dataflow_subnetwork:
    args.append(f'--subnetwork={settings.dataflow_subnetwork}')
  return args + list(settings.extra_beam_args)


def component_beam_pipeline_args(settings: VertexSettings
                                 ) -> Dict[str, List[str]]:
  """Per-component Beam arguments (after the pipeline's, so they win)."""
  return {
      TRANSFORM_COMPONENT_ID: [
          f'--machine_type={settings.transform_machine_type}',
          f'--max_num_workers={settings.transform_max_num_workers}'],
      EVALUATOR_COMPONENT_ID: [
          f'--machine_type={settings.evaluator_machine_type}',
          f'--max_num_workers={settings.evaluator_max_num_workers}'],
  }


def _accelerator_count(settings: VertexSettings) -> int:
  if settings.accelerator_count is not None:
    return settings.accelerator_count
  if settings.uses_tpu:
    return TPU_SLICES[settings.trainer_machine_type].chips
  return int(re.fullmatch(r'.*-([0-9]+)g', settings.trainer_machine_type)
             .group(1))


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
        or TPU_SLICES[settings.trainer_machine_type].topology)
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


def _parse_params_override(text: str) -> Dict[str, Any]:
  """An inline params override (YAML/JSON or a.b=c pairs) as a nested dict."""
  if not text.strip():
    return {}
  try:
    parsed = yaml.safe_load(text)
  except yaml.YAMLError:
    parsed = None
  if not isinstance(parsed, dict):
    # a.b=c pairs, in TFMG's own syntax (this imports TensorFlow).
    from official.modeling.hyperparams import params_dict  # pylint: disable=g-import-not-at-top
    try:
      parsed = yaml.safe_load(params_dict.nested_csv_str_to_json_str(text))
    except (ValueError, yaml.YAMLError):
      parsed = None
  if not isinstance(parsed, dict):
    raise VertexSettingsError(
        '--params-override must be inline YAML/JSON or a.b=c pairs (a file '
        f'path is not read when compiling), got {text!r}.')
  return parsed


def _runtime_override(settings: VertexSettings,
                      user_runtime: Mapping[str, Any]) -> Dict[str, Any]:
  """The TFMG runtime that the worker pool needs."""
  default_dtype = 'bfloat16'
  if settings.accelerator_type in GPUS_WITHOUT_BFLOAT16:
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

  Raises:
    VertexSettingsError: the override is not inline or sets a runtime that
      contradicts the worker pool (e.g. mirrored on a TPU).
  """
  override = _parse_params_override(settings.params_override)
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


def to_pipeline_config(settings: VertexSettings) -> config_lib.PipelineConfig:
  """The `PipelineConfig` of the Vertex pipeline (settings must be valid)."""
  return config_lib.PipelineConfig(
      pipeline_root=settings.pipeline_root,
      data_root=settings.data_root,
      pipeline_name=settings.pipeline_name,
      train_pattern=settings.train_pattern,
      eval_pattern=settings.eval_pattern,
      experiment=settings.experiment,
      params_override=json.dumps(trainer_params_override(settings),
                                 sort_keys=True),
      train_steps=settings.train_steps,
      eval_steps=settings.eval_steps,
      materialize=settings.materialize,
      push_dir=settings.push_dir,
      pq_lower_bound=settings.pq_lower_bound,
      pq_regression_tolerance=settings.pq_regression_tolerance,
      warm_start=settings.warm_start,
      init_checkpoint=settings.init_checkpoint,
      beam_pipeline_args=dataflow_beam_pipeline_args(settings),
      enable_cache=settings.enable_cache,
      schema_file=IMAGE_SCHEMA_FILE,
      vertex_training=vertex_training_config(settings))
