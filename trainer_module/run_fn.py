"""TFX Trainer entry point (`GenericExecutor`): `run_fn(fn_args)`.

`run_fn` builds a TF Model Garden (TFMG) experiment config from the Trainer's
`custom_config` and `fn_args`, trains and evaluates it with TFMG's own loop
(`official.core.train_lib.run_experiment`, Orbit) and exports a SavedModel
with the serving signatures of `trainer_module.export` to
`fn_args.serving_model_dir`.

`custom_config` keys (all optional):
  experiment: registered TFMG experiment name (default `maskformer_tiny`).
  params_override: YAML/JSON string (or YAML file) overriding the experiment,
    e.g. runtime.distribution_strategy='tpu' and runtime.tpu='local'.
  output_size, num_segment_slots: S and N of the Transform; checked against
    the transform graph, whose values are used when these are absent.
  materialized: True when the examples are Transform's transformed examples,
    False when they are raw TFMG examples that the transform graph turns into
    model inputs on the fly; detected from the first record when absent.
  compression_type: of the example files (default GZIP, what ExampleGen and
    Transform write).
  checkpoint_dir: stable directory for resumable checkpoints; the
    training run's directory under it is keyed on the config and the
    inputs (see `trainer_module.training_checkpoints`).
  run_key: name of this training run under `checkpoint_dir` (default: the
    experiment name and a fingerprint of the config and the inputs).
  init_checkpoint: overrides `task.init_checkpoint` (a checkpoint prefix or
    a directory of checkpoints) that a new training run starts from.
  warm_start: True to initialise the model from `fn_args.base_model` (the
    last blessed model, from the pipeline's resolver) when there is one.

Resuming: with `checkpoint_dir`, an interrupted training of the same config
and inputs continues from its last checkpoint; other inputs or config train
from step 0 (`trainer_module.training_checkpoints`). Without `checkpoint_dir`,
checkpoints go to `model_run_dir` (resuming only within one execution).
After the export, the run's checkpoints are deleted and its model weights
are kept with the model artifact (`WARM_START_SUBDIR`), where a later warm
start finds them. TensorBoard summaries (losses of every output, learning
rate, PQ at evaluation) and `params.yaml` are always written to
`model_run_dir`.

Warm start (opt-in): the model (not the optimizer, not the step count)
starts from the base model's weights and trains all `train_steps`. It
replaces `task.init_checkpoint` (e.g. a pretrained backbone) when there is a
base model; without one (the first run), `task.init_checkpoint` applies.
"""

import os
from typing import Any, Dict, Mapping, Optional, Sequence

from absl import logging
import orbit
import tensorflow as tf

from official.common import distribute_utils
from official.core import config_definitions as cfg
from official.core import exp_factory
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from official.modeling import hyperparams
from official.modeling import performance
from trainer_module import export
from trainer_module import progress
from trainer_module import registry_imports
from trainer_module import training_checkpoints
from trainer_module.configs import experiment_names
from trainer_module.tasks import init_checkpoint as init_checkpoint_lib

DEFAULT_COMPRESSION_TYPE = 'GZIP'
# A raw TFMG record has this feature; a transformed example does not.
RAW_IMAGE_FEATURE = 'image/encoded'
TRAIN_SUMMARY_SUBDIR = 'train'
# Model weights saved beside the model artifact's Format-Serving directory.
WARM_START_SUBDIR = 'warm_start_checkpoint'


def _join_patterns(patterns: Sequence[str]) -> str:
  """TFMG's `input_path` form of a list of file patterns."""
  if not patterns:
    raise ValueError('The Trainer got no example files (fn_args.train_files '
                     'or fn_args.eval_files is empty).')
  return ','.join(patterns)


def records_are_transformed(patterns: Sequence[str],
                            compression_type: str) -> bool:
  """Whether the first record of `patterns` is a transformed example."""
  files = sorted(name for pattern in patterns
                 for name in tf.io.gfile.glob(pattern))
  if not files:
    raise ValueError(f'No example files match {list(patterns)}.')
  dataset = tf.data.TFRecordDataset(files, compression_type=compression_type)
  for record in dataset.take(1):
    example = tf.train.Example.FromString(record.numpy())
    return RAW_IMAGE_FEATURE not in example.features.feature
  raise ValueError(f'The example files {files} hold no record.')


def _transform_sizes(transform_output_dir: str) -> Dict[str, int]:
  """S and N of the transform graph in `transform_output_dir`."""
  import tensorflow_transform as tft
  spec = tft.TFTransformOutput(transform_output_dir).transformed_feature_spec()
  # S is the row count of the label maps (the image is one string).
  return {'output_size': int(spec['segment_map'].shape[0]),
          'num_segment_slots': int(spec['segment_classes'].shape[0])}


def _data_sizes(custom_config: Mapping[str, Any],
                transform_output_dir: Optional[str],
                params: cfg.ExperimentConfig) -> Dict[str, int]:
  """S and N: from the transform graph, else custom_config, else params."""
  sizes = {'output_size': params.task.train_data.output_size,
           'num_segment_slots': params.task.train_data.num_segment_slots}
  requested = {key: int(custom_config[key]) for key in sizes
               if custom_config.get(key) is not None}
  sizes.update(requested)
  if transform_output_dir:
    graph_sizes = _transform_sizes(transform_output_dir)
    for key, value in requested.items():
      if value != graph_sizes[key]:
        raise ValueError(
            f'custom_config {key}={value} differs from the transform graph in '
            f'{transform_output_dir} ({key}={graph_sizes[key]}).')
    sizes.update(graph_sizes)
  return sizes


def _transform_output_dir(fn_args: Any) -> Optional[str]:
  return (getattr(fn_args, 'transform_output', None) or
          getattr(fn_args, 'transform_graph_path', None))


def build_experiment_config(fn_args: Any) -> cfg.ExperimentConfig:
  """The validated, locked experiment config of a Trainer execution.

  Starts from the registered experiment, applies `params_override`, then the
  data files, transform graph, sizes and step counts of `fn_args`.

  Args:
    fn_args: TFX `FnArgs` (train_files, eval_files, transform_output /
      transform_graph_path, train_steps, eval_steps, custom_config).
  """
  custom_config = dict(fn_args.custom_config or {})
  params = exp_factory.get_exp_config(
      custom_config.get('experiment') or
      experiment_names.DEFAULT_EXPERIMENT)
  params = hyperparams.override_params_dict(
      params, custom_config.get('params_override') or '', is_strict=True)
  if custom_config.get('init_checkpoint'):
    params.override({'task': {
        'init_checkpoint': custom_config['init_checkpoint']}}, is_strict=True)

  compression_type = custom_config.get('compression_type',
                                       DEFAULT_COMPRESSION_TYPE)
  transform_output_dir = _transform_output_dir(fn_args)
  materialized = custom_config.get('materialized')
  if materialized is None:
    materialized = records_are_transformed(fn_args.train_files,
                                           compression_type)
  if not materialized and not transform_output_dir:
    raise ValueError('The examples are raw TFMG records but the Trainer has '
                     'no transform graph (fn_args.transform_output).')
  sizes = _data_sizes(custom_config, transform_output_dir, params)
  data_override = dict(
      compression_type=compression_type,
      transform_graph_dir='' if materialized else transform_output_dir,
      **sizes)
  trainer_override = {}
  if fn_args.train_steps:
    trainer_override['train_steps'] = int(fn_args.train_steps)
  if fn_args.eval_steps:
    trainer_override['validation_steps'] = int(fn_args.eval_steps)
  size = sizes['output_size']
  task_override = {'model': {'input_size': [size, size, 3]}}
  warm_start_from = warm_start_checkpoint(fn_args)
  if warm_start_from:
    if params.task.init_checkpoint:
      logging.info('Warm start replaces init_checkpoint %s.',
                   params.task.init_checkpoint)
    task_override.update(init_checkpoint=warm_start_from,
                         init_checkpoint_modules='all')
  params.override({
      'task': {
          **task_override,
          'train_data': dict(data_override,
                             input_path=_join_patterns(fn_args.train_files)),
          'validation_data': dict(
              data_override, input_path=_join_patterns(fn_args.eval_files)),
      },
      'trainer': trainer_override,
  }, is_strict=True)
  params.validate()
  params.lock()
  return params


def warm_start_checkpoint(fn_args: Any) -> Optional[str]:
  """The base model's weights when `custom_config['warm_start']` is on.

  None without warm start or without a base model (no model blessed yet).
  """
  custom_config = fn_args.custom_config or {}
  base_model = getattr(fn_args, 'base_model', None)
  if not custom_config.get('warm_start'):
    return None
  if not base_model:
    logging.info('Warm start: there is no blessed model yet; training '
                 'without it.')
    return None
  directory = os.path.join(os.path.dirname(base_model.rstrip('/')),
                           WARM_START_SUBDIR)
  checkpoint = tf.train.latest_checkpoint(directory)
  if not checkpoint:
    raise ValueError(
        f'Warm start: the base model {base_model} has no weights in '
        f'{directory} (models exported before warm start was supported have '
        'none); run once without --warm-start.')
  logging.info('Warm start from the base model %s (%s).', base_model,
               checkpoint)
  return checkpoint


def save_warm_start_weights(params: cfg.ExperimentConfig,
                            checkpoint_path: str, serving_model_dir: str
                            ) -> str:
  """Saves the model weights of `checkpoint_path` (no optimizer state)
  beside `serving_model_dir` in the model artifact, as a warm-start
  checkpoint (`init_checkpoint_modules='all'` reads it). Returns its path."""
  model = export.restore_model(params, checkpoint_path)
  prefix = os.path.join(os.path.dirname(serving_model_dir.rstrip('/')),
                        WARM_START_SUBDIR, 'weights')
  return tf.train.Checkpoint(**model.checkpoint_items).save(prefix)


def distribution_strategy(params: cfg.ExperimentConfig) -> tf.distribute.Strategy:
  """Sets the runtime's mixed-precision policy; returns its strategy (TPU,
  mirrored, one-device or default) as `params.runtime` describes."""
  if params.runtime.mixed_precision_dtype:
    performance.set_mixed_precision_policy(
        params.runtime.mixed_precision_dtype)
  return distribute_utils.get_distribution_strategy(
      distribution_strategy=params.runtime.distribution_strategy,
      all_reduce_alg=params.runtime.all_reduce_alg,
      num_gpus=params.runtime.num_gpus,
      tpu_address=params.runtime.tpu)


def train_and_evaluate(params: cfg.ExperimentConfig, model_dir: str,
                       summary_dir: str) -> None:
  """Trains and evaluates with TFMG's `run_experiment` ('train_and_eval').

  Args:
    params: The experiment config.
    model_dir: TFMG model directory: checkpoints are written there and the
      latest one is restored before training.
    summary_dir: Where TensorBoard summaries go (`train/`, and the
      validation subdirectory of `params.trainer`).
  """
  strategy = distribution_strategy(params)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=summary_dir)
    # Built here (as TFMG's runner would) so that the summary managers can
    # count steps with its global step.
    trainer = train_utils.create_trainer(
        params, task, train=True, evaluate=True,
        checkpoint_exporter=train_utils.maybe_create_best_ckpt_exporter(
            params, model_dir))
  summary_manager = orbit.utils.SummaryManager(
      os.path.join(summary_dir, TRAIN_SUMMARY_SUBDIR), tf.summary.scalar,
      global_step=trainer.global_step)
  eval_summary_manager = orbit.utils.SummaryManager(
      os.path.join(summary_dir, params.trainer.validation_summary_subdir),
      tf.summary.scalar, global_step=trainer.global_step)
  # `step S/T  loss L  X steps/s  ETA` at least once a minute (logging).
  with progress.for_trainer(params, trainer) as train_progress:
    train_lib.run_experiment(
        distribution_strategy=strategy,
        task=task,
        mode='train_and_eval',
        params=params,
        model_dir=model_dir,
        run_post_eval=False,
        trainer=trainer,
        train_actions=[train_progress],
        summary_manager=summary_manager,
        eval_summary_manager=eval_summary_manager)


def run_fn(fn_args: Any) -> None:
  """TFX Trainer `run_fn`: train, evaluate and export MaskFormer.

  Args:
    fn_args: TFX `FnArgs`; see the module docstring for `custom_config`.
  """
  params = build_experiment_config(fn_args)
  model_dir = training_checkpoints.checkpoint_dir_of(fn_args, params)
  logging.info('MaskFormer checkpoints: %s; summaries: %s', model_dir,
               fn_args.model_run_dir)
  resumed_from = tf.train.latest_checkpoint(model_dir)
  if resumed_from:
    logging.info('Continuing the training run of %s (up to step %d).',
                 resumed_from, params.trainer.train_steps)
    training_checkpoints.report_resumption(resumed_from)
  else:
    logging.info('Training from step 0 (no checkpoint of this config and '
                 'these inputs in %s).', model_dir)
    if params.task.init_checkpoint:
      # A missing checkpoint fails here, before the Trainer builds anything.
      init_checkpoint_lib.resolve_init_checkpoint(params.task.init_checkpoint)
  train_utils.serialize_config(params, fn_args.model_run_dir)
  if model_dir != fn_args.model_run_dir:
    train_utils.serialize_config(params, model_dir)
  train_and_evaluate(params, model_dir, fn_args.model_run_dir)

  checkpoint_path = tf.train.latest_checkpoint(model_dir)
  if not checkpoint_path:
    raise ValueError(f'Training wrote no checkpoint to {model_dir}.')
  transform_output_dir = _transform_output_dir(fn_args)
  if not transform_output_dir:
    raise ValueError('Export needs the transform graph '
                     '(fn_args.transform_output).')
  export.export_saved_model(params, checkpoint_path, transform_output_dir,
                            fn_args.serving_model_dir)
  save_warm_start_weights(params, checkpoint_path, fn_args.serving_model_dir)
  training_checkpoints.finish_run(fn_args, model_dir)
