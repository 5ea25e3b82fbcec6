"""`maskformer-tfx run --init-checkpoint` reaches the Trainer's experiment.

The flag goes CLI -> PipelineConfig -> the Trainer's custom_config ->
`run_fn.build_experiment_config` -> `task.init_checkpoint`. The pipeline is
built (not run): what the Trainer would receive is read from its component.
"""

import argparse
import json

from runners import cli
from runners.commands import run
from tfx_pipeline import pipeline
from trainer_module.run_fn import build_experiment_config


def _trainer_custom_config(argv):
  args = cli.build_parser().parse_args(argv)
  config = run.pipeline_config_of(args, 'gs://bucket/data', '/tmp/root')
  (trainer,) = [component for component in
                pipeline.create_components(config)
                if component.id == 'Trainer']
  custom_config = trainer.exec_properties['custom_config']
  return json.loads(custom_config) if isinstance(custom_config,
                                                 str) else custom_config


def _params(custom_config):
  fn_args = argparse.Namespace(
      custom_config=dict(custom_config, materialized=True),
      train_files=['/data/train-*'], eval_files=['/data/val-*'],
      train_steps=None, eval_steps=None, transform_output=None)
  return build_experiment_config(fn_args)


def test_run_flag_sets_the_trainers_init_checkpoint():
  custom_config = _trainer_custom_config(
      ['run', '--experiment', 'maskformer_coco_panoptic',
       '--init-checkpoint', '/weights/r50_converted'])
  assert custom_config['init_checkpoint'] == '/weights/r50_converted'
  params = _params(custom_config)
  assert params.task.init_checkpoint == '/weights/r50_converted'


def test_without_the_flag_the_experiments_checkpoint_is_used():
  custom_config = _trainer_custom_config(
      ['run', '--experiment', 'maskformer_coco_panoptic'])
  assert 'init_checkpoint' not in custom_config
  params = _params(custom_config)
  assert params.task.init_checkpoint == (
      'gs://cloud-tpu-checkpoints/vision-2.0/resnet50_imagenet/ckpt-28080')
  assert not params.task.model.backbone.resnet.bn_trainable
