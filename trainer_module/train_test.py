"""End-to-end test of the TFMG training driver on synthetic records."""

import json
import os
import pathlib
import re
import subprocess
import sys

import tensorflow as tf

from trainer_module.dataloaders import synthetic_examples

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZE = 64
SLOTS = 8


def test_driver_trains_checkpoints_and_evaluates(tmp_path):
  synthetic_examples.write_transformed_records(tmp_path / 'train.gz', 4, SIZE, SLOTS)
  synthetic_examples.write_transformed_records(tmp_path / 'val.gz', 2, SIZE, SLOTS,
                                       seed=1)
  data = {'output_size': SIZE, 'num_segment_slots': SLOTS,
          'global_batch_size': 2}
  overrides = {
      'task': {
          'model': {'input_size': [SIZE, SIZE, 3]},
          'train_data': dict(data, input_path=str(tmp_path / 'train.gz'),
                             shuffle_buffer_size=4),
          'validation_data': dict(data, input_path=str(tmp_path / 'val.gz')),
      },
      'trainer': {'train_steps': 2, 'steps_per_loop': 1,
                  'summary_interval': 1, 'checkpoint_interval': 2,
                  'validation_interval': 2, 'validation_steps': 1},
  }
  model_dir = tmp_path / 'model'
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(
      [sys.executable, '-m', 'trainer_module.train',
       '--experiment=maskformer_tiny', '--mode=train_and_eval',
       f'--model_dir={model_dir}',
       f'--params_override={json.dumps(overrides)}'],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
      check=False)
  output = result.stdout + result.stderr
  assert result.returncode == 0, output[-5000:]
  assert tf.train.latest_checkpoint(str(model_dir)).endswith('-2')
  assert (model_dir / 'params.yaml').exists()
  assert "'pq':" in output and "'sq_things':" in output, output[-5000:]
  assert re.search(r'step 2/2  loss [\d.]+  [\d.]+ steps/s  ETA 00:00',
                   output), output[-5000:]
