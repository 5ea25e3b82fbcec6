"""TF Model Garden training driver for the MaskFormer experiments.

Usage (TF_USE_LEGACY_KERAS=1 must be set before Python starts):

  python -m trainer_module.train --experiment=maskformer_tiny \
    --mode=train_and_eval --model_dir=/tmp/maskformer \
    --params_override='task.train_data.input_path=/data/train-*.gz,...'

Flags are TFMG's (`official.common.flags`): --experiment, --mode,
--model_dir, --config_file, --params_override, --tpu, ...
"""

import contextlib
from typing import Any, Mapping, Tuple

from absl import app
from absl import flags
import tf_keras

from official.common import flags as tfm_flags
from official.core import config_definitions as cfg
from official.core import task_factory
from official.core import train_lib
from official.core import train_utils
from trainer_module import progress
from trainer_module import registry_imports
from trainer_module.run_fn import distribution_strategy

FLAGS = flags.FLAGS


def run_experiment(params: cfg.ExperimentConfig, model_dir: str,
                   mode: str = 'train_and_eval',
                   run_post_eval: bool = False
                  ) -> Tuple[tf_keras.Model, Mapping[str, Any]]:
  """Runs `mode` of an experiment config with TFMG's `run_experiment`.

  Sets the mixed-precision policy and builds the distribution strategy from
  `params.runtime`, and builds the task inside the strategy scope.

  Args:
    params: The experiment config (validated).
    model_dir: Where checkpoints, summaries and params.yaml go.
    mode: 'train', 'eval', 'train_and_eval' or 'continuous_eval'.
    run_post_eval: Also evaluate once after training and return the metrics.

  Returns:
    The model and the evaluation logs (empty unless evaluated).
  """
  if 'train' in mode:
    train_utils.serialize_config(params, model_dir)
  strategy = distribution_strategy(params)
  with strategy.scope():
    task = task_factory.get_task(params.task, logging_dir=model_dir)
    # Built here (as TFMG's runner would) so that the progress lines can
    # read its global step.
    trainer = train_utils.create_trainer(
        params, task, train='train' in mode,
        evaluate='eval' in mode or run_post_eval,
        checkpoint_exporter=train_utils.maybe_create_best_ckpt_exporter(
            params, model_dir))
  # `step S/T  loss L  X steps/s  ETA` at least once a minute (logging).
  train_progress = progress.for_trainer(params, trainer)
  with (train_progress if 'train' in mode else contextlib.nullcontext()):
    return train_lib.run_experiment(
        distribution_strategy=strategy,
        task=task,
        mode=mode,
        params=params,
        model_dir=model_dir,
        run_post_eval=run_post_eval,
        trainer=trainer,
        train_actions=[train_progress] if 'train' in mode else None)


def main(_) -> None:
  params = train_utils.parse_configuration(FLAGS)
  run_experiment(params, FLAGS.model_dir, mode=FLAGS.mode)


if __name__ == '__main__':
  tfm_flags.define_flags()
  flags.mark_flags_as_required(['experiment', 'mode', 'model_dir'])
  app.run(main)
