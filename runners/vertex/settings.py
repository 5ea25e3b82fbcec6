"""`VertexSettings`: everything that differs between a local run and a
Vertex AI Pipelines run.

Project, region, buckets, the container image, the Dataflow machines of the
Beam components, the Vertex AI Training worker pool of the Trainer (TPU v5e by
default, or GPUs) and the evaluation thresholds. Settings come from an
optional YAML file (keys are the field names) with command-line flags on top
(`read_settings`); `validation.validate` checks them.
"""

import dataclasses
import posixpath
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from runners.vertex import accelerators
from schemas import DRIFT_SCHEMA_FILE, RAW_SCHEMA_FILE
from tfx_pipeline import config as config_lib

# Where the Dockerfile puts this repository inside the image (an editable
# install, so the installed package files are these).
IMAGE_PACKAGE_DIR = '/pipeline'
# The curated raw schema as ImportSchemaGen reads it on Vertex.
IMAGE_SCHEMA_FILE = posixpath.join(IMAGE_PACKAGE_DIR, 'schemas', RAW_SCHEMA_FILE)
# The curated drift schema (drift limits) as the DriftSchemaGen reads it.
IMAGE_DRIFT_SCHEMA_FILE = posixpath.join(IMAGE_PACKAGE_DIR, 'schemas',
                                         DRIFT_SCHEMA_FILE)

DEFAULT_VERTEX_EXPERIMENT = 'maskformer_coco_panoptic'


# The prebuilt Vertex AI TensorFlow 2.15 prediction image (TF Serving): it
# loads and answers the exported SavedModel (benchmarks/serving_tf215.py).
DEFAULT_SERVING_IMAGE = (
    'us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest')


class VertexSettingsError(ValueError):
  """Wrong or missing settings; the message names every problem."""


def _setting(default: Any, help_text: str, flag: Optional[str] = None,
             aliases: Tuple[str, ...] = ()) -> Any:
  """A settings field with its --help text (and its flag, if not the name,
  and other spellings of the flag, e.g. TF Model Garden's)."""
  metadata = {'help': help_text, 'aliases': aliases}
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
  span: Optional[int] = _setting(
      None, 'With split patterns naming the span ({SPAN}, e.g. '
      "'span-{SPAN}/train-*'), the one span to read (default: the latest "
      'span, found when the pipeline runs).')
  allow_drift: bool = _setting(
      False, 'Train even when the span drifted from the data of the last '
      'blessed model (DriftGate lets it through; the review report flags '
      'it).')
  drift_schema_file: Optional[str] = _setting(
      None, 'gs:// TFDV schema with the drift limits (drift_comparator of '
      'each panoptic statistic) instead of the image\'s '
      f'schemas/{DRIFT_SCHEMA_FILE}.', flag='--drift-schema')
  materialize: bool = _setting(
      False, 'Whether Transform writes transformed examples (off at COCO '
      'scale: the Trainer applies the transform graph on the fly).')
  # Training.
  experiment: str = _setting(DEFAULT_VERTEX_EXPERIMENT,
                             'TF Model Garden experiment the Trainer runs.')
  config_files: List[str] = _setting(
      [], 'TF Model Garden experiment config (YAML) overriding the '
      'experiment params, read here when compiling; repeatable, applied in '
      'order before --params-override, as TFMG\'s --config_file.',
      flag='--config-file', aliases=('--config_file',))
  params_override: str = _setting(
      '', 'Inline YAML/JSON or a.b=c,... pairs overriding the experiment '
      'params; its runtime must not contradict the worker pool.',
      aliases=('--params_override',))
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
      'ct5lp-hightpu-8t', 'Machine type of the Vertex AI Training worker '
      f'pool. TPU VMs: {", ".join(accelerators.TPU_SLICES)}; GPU machines, e.g. '
      'a2-highgpu-1g, with a NVIDIA_* --accelerator-type.')
  accelerator_type: str = _setting(
      'TPU_V5_LITEPOD', 'Accelerator of the worker pool: '
      f'{", ".join(accelerators.TPU_ACCELERATOR_TYPES)} (TPUStrategy) or NVIDIA_* '
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
  # Model Registry and serving (docs/deploy_vertex.md).
  registry_model: Optional[str] = _setting(
      None, 'Vertex AI Model Registry model (display name) that each blessed '
      'model is uploaded to as a new default version with the alias '
      '"blessed" (default: --pipeline-name).')
  serving_image: str = _setting(
      DEFAULT_SERVING_IMAGE, 'Serving container of the registry versions '
      '(a TF Serving image that loads the exported SavedModel).')
  endpoint: Optional[str] = _setting(
      None, 'Vertex AI endpoint (display name, created if missing) that the '
      'new version is deployed to (default: none, registry only).')
  serving_machine_type: str = _setting(
      'n1-standard-4', 'Machine type of the endpoint\'s replicas.')
  min_replicas: int = _setting(1, 'Fewest endpoint replicas of the version.')
  max_replicas: int = _setting(1, 'Most endpoint replicas (autoscaling).')
  traffic_percent: int = _setting(
      100, 'Share of the endpoint\'s traffic the new version takes: 100 '
      'replaces the deployed versions (undeployed once it serves), less is '
      'a canary beside them.')
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
    return accelerators.is_tpu(self.accelerator_type)


def setting_fields() -> Tuple[dataclasses.Field, ...]:
  """The fields of `VertexSettings`, in declaration order."""
  return dataclasses.fields(VertexSettings)


def flag_name(field: dataclasses.Field) -> str:
  """The command-line flag of a settings field."""
  return field.metadata.get('flag', '--' + field.name.replace('_', '-'))


def flag_names(field: dataclasses.Field) -> Tuple[str, ...]:
  """The flag of a settings field and its other spellings."""
  return (flag_name(field), *field.metadata.get('aliases', ()))


def read_settings(config_file: Optional[str] = None,
                  overrides: Optional[Mapping[str, Any]] = None
                  ) -> VertexSettings:
  """Settings from an optional YAML file, then `overrides` (not validated).

  Args:
    config_file: local YAML file whose keys are `VertexSettings` field names.
    overrides: field values that replace the file's (None values are
      ignored, so unset flags keep the file's or the default value).

  Raises:
    VertexSettingsError: unreadable file or unknown keys.
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
  return VertexSettings(**values)
