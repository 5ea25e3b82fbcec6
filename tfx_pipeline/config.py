"""Settings of one pipeline instance (what the CLI flags and runners fill in)."""

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

# Experiment names only (no TensorFlow): building a parser or a config stays
# light; `experiment_params` registers the experiments when it looks one up.
from trainer_module.configs.experiment_names import DEFAULT_EXPERIMENT

DEFAULT_PIPELINE_NAME = 'maskformer-tfx'
# The default PQ bound of the Evaluator's gate (fraction, not percent).
DEFAULT_PQ_LOWER_BOUND = 0.2
# How far (absolute PQ, 0..1) a candidate may fall below the last blessed
# model's PQ and still be blessed: one PQ point. Retraining the same config
# (another seed, a new data snapshot) moves PQ by less than the point at which
# COCO panoptic results are reported; a drop of a full point or more is a
# regression. See docs/evaluation.md, "The gate".
DEFAULT_PQ_REGRESSION_TOLERANCE = 0.01

# Local Beam: in-process DirectRunner (Dataflow args come from the Vertex
# runner) with its defaults, in_memory and one worker. No arguments: given any,
# every TFX Beam executor first builds an sdist of TFX for remote workers
# (dependency_utils.make_beam_dependency_flags; 4-15 s per component here),
# which an in-process runner never uses.
DEFAULT_LOCAL_BEAM_ARGS = ()


@dataclasses.dataclass
class PipelineConfig:
  """Everything `tfx_pipeline.pipeline.create_pipeline` needs.

  Attributes:
    pipeline_root: where artifacts, ML Metadata and logs of local runs live.
    data_root: directory (local or gs://) of TFMG COCO panoptic TFRecords.
    pipeline_name: the TFX pipeline name (ML Metadata context).
    train_pattern: glob under data_root for the train split.
    eval_pattern: glob under data_root for the eval split.
    span: with patterns naming the span ({SPAN}), the one span to read
      (ImportExampleGen's static range); None: the latest span.
    experiment: name of the TFMG experiment the Trainer runs.
    params_override: YAML/JSON string overriding the experiment's params.
    train_steps: Trainer steps (None: the experiment's own).
    eval_steps: Trainer evaluation steps (None: the whole eval split).
    output_size: Transform's square output size S (None: the experiment's).
    num_segment_slots: Transform's segment slots N (None: the experiment's).
    materialize: whether Transform writes transformed examples.
    push_dir: where the Pusher copies blessed models (None:
      PIPELINE_ROOT/pushed_models).
    pq_lower_bound: the Evaluator blesses a model only if its PQ (0..1) is
      at least this.
    pq_regression_tolerance: ... and at most this much (absolute PQ, 0..1)
      below the PQ of the last blessed model, when there is one.
    warm_start: initialise the Trainer's model from the last blessed model
      (TFX `base_model`, from latest_blessed_model_resolver); off: train
      from the experiment's initialisation.
    init_checkpoint: checkpoint (prefix or directory, local or gs://) that
      a new training run initialises `init_checkpoint_modules` from (None:
      the experiment's `task.init_checkpoint`).
    beam_pipeline_args: arguments for every Beam-based component.
    enable_cache: reuse outputs of identical earlier executions.
    metadata_path: SQLite ML Metadata file (local runs).
    data_validation_only: build only the data half (ExampleGen →
      StatisticsGen → schema → ExampleValidator → gate).
    schema_file: the curated raw schema (default: the installed package's;
      container images pass their own path).
    drift_schema_file: the drift limits of the panoptic statistics (default:
      schemas/panoptic_drift_schema.pbtxt).
    allow_drift: train even when the data drifted against the data of the
      last blessed model (the summary and the report flag it).
    vertex_training: Vertex AI Training settings for the Trainer (the
      `tfx.extensions.google_cloud_ai_platform` custom_config keys); None
      trains where the pipeline runs.
    vertex_registry: Vertex AI Model Registry settings of the Pusher
      (`vertex_pusher.registry_config`): a blessed model is pushed to
      `push_dir` and uploaded as a registry version; None pushes to
      `push_dir` only.
  """
  pipeline_root: str
  data_root: str
  pipeline_name: str = DEFAULT_PIPELINE_NAME
  train_pattern: str = 'train-*'
  eval_pattern: str = 'val-*'
  span: Optional[int] = None
  experiment: str = DEFAULT_EXPERIMENT
  params_override: str = ''
  train_steps: Optional[int] = None
  eval_steps: Optional[int] = None
  output_size: Optional[int] = None
  num_segment_slots: Optional[int] = None
  materialize: bool = True
  push_dir: Optional[str] = None
  pq_lower_bound: float = DEFAULT_PQ_LOWER_BOUND
  pq_regression_tolerance: float = DEFAULT_PQ_REGRESSION_TOLERANCE
  warm_start: bool = False
  init_checkpoint: Optional[str] = None
  beam_pipeline_args: List[str] = dataclasses.field(
      default_factory=lambda: list(DEFAULT_LOCAL_BEAM_ARGS))
  enable_cache: bool = False
  metadata_path: Optional[str] = None
  data_validation_only: bool = False
  schema_file: Optional[str] = None
  drift_schema_file: Optional[str] = None
  allow_drift: bool = False
  vertex_training: Optional[Dict[str, Any]] = None
  vertex_registry: Optional[Dict[str, Any]] = None

  def __post_init__(self):
    from tfx_pipeline import spans
    spans.check_patterns(self.train_pattern, self.eval_pattern, self.span)
    if self.output_size is None or self.num_segment_slots is None:
      output_size, num_segment_slots = experiment_transform_sizes(
          self.experiment, self.params_override)
      if self.output_size is None:
        self.output_size = output_size
      if self.num_segment_slots is None:
        self.num_segment_slots = num_segment_slots
    if self.push_dir is None:
      self.push_dir = f'{self.pipeline_root.rstrip("/")}/pushed_models'
    for name in ('pq_lower_bound', 'pq_regression_tolerance'):
      check_absolute_pq(name, getattr(self, name))
    if self.train_steps is not None and self.train_steps < 1:
      raise ValueError(f'train_steps must be at least 1, got {self.train_steps}.')
    if self.output_size < 32:
      raise ValueError(f'output_size must be at least 32, got {self.output_size}.')
    if self.num_segment_slots < 1:
      raise ValueError('num_segment_slots must be at least 1, got '
                       f'{self.num_segment_slots}.')


def check_absolute_pq(name: str, value: float) -> None:
  """Raises ValueError unless `value` is an absolute PQ, in [0, 1]."""
  if not 0.0 <= value <= 1.0:
    raise ValueError(f'{name} is an absolute PQ in [0, 1], got {value}.')


def experiment_params(experiment: str) -> Any:
  """The registered TFMG experiment config `experiment`.

  Raises:
    ValueError: naming the experiment and the registered MaskFormer ones.
  """
  from official.core import exp_factory
  from trainer_module import registry_imports
  from trainer_module.configs import experiment_names
  try:
    return exp_factory.get_exp_config(experiment)
  except (KeyError, LookupError):
    known = ', '.join(sorted(experiment_names.ALL))
    raise ValueError(f'Unknown experiment {experiment!r}; the MaskFormer '
                     f'experiments are: {known}.') from None


def experiment_transform_sizes(experiment: str,
                               params_override: str = '') -> Tuple[int, int]:
  """(S, N) of an experiment's training data, after `params_override`."""
  from official.modeling import hyperparams
  params = experiment_params(experiment)
  if params_override:
    params = hyperparams.override_params_dict(
        params, params_override, is_strict=True)
  data = params.task.train_data
  return data.output_size, data.num_segment_slots
