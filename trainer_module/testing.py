"""Test helpers of the Trainer's tests: a transformed synthetic sample and the
FnArgs that TFX's GenericExecutor gives `run_fn`.

Used by `trainer_module/run_fn_test.py`, `trainer_module/export_test.py` and
the `transformed_sample` / `trained_model_dir` fixtures of conftest.py.
"""

import json
import pathlib
import signal
import subprocess
import time
from typing import Any, Callable, Dict, Optional

import pytest

import tensorflow_transform as tft
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
from tfx.components.trainer import fn_args_utils

from transform_module import beam_runner
from transform_module import preprocessing

OUTPUT_SIZE = 64
NUM_SEGMENT_SLOTS = 8
# Small batches, one step per loop, a summary and a checkpoint every step.
PARAMS_OVERRIDE = {
    'task': {'train_data': {'global_batch_size': 2},
             'validation_data': {'global_batch_size': 3}},
    'trainer': {'steps_per_loop': 1, 'summary_interval': 1,
                'checkpoint_interval': 1, 'validation_interval': 1000},
}


def transform_sample(synthetic_sample: pathlib.Path,
                     graph_dir: pathlib.Path) -> Dict[str, str]:
  """Transforms the synthetic sample at S = OUTPUT_SIZE into `graph_dir` with
  a TFX-like layout.

  Returns paths: `graph` (transform output, with the raw metadata that TFX's
  Transform writes beside the graph), `transformed` (GZIP transformed
  examples) and `raw` (the uncompressed raw TFMG records).
  """
  raw_pattern = str(synthetic_sample / 'tfrecords' / '*.tfrecord')
  beam_runner.run_transform(
      raw_pattern, str(graph_dir),
      {'output_size': OUTPUT_SIZE, 'num_segment_slots': NUM_SEGMENT_SLOTS})
  metadata_io.write_metadata(
      dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
          preprocessing.raw_feature_spec())),
      str(graph_dir / tft.TFTransformOutput.RAW_METADATA_DIR))
  return {
      'graph': str(graph_dir),
      'transformed': str(graph_dir /
                         f'{beam_runner.TRANSFORMED_EXAMPLES_PREFIX}-*'),
      'raw': raw_pattern,
  }


def make_fn_args(sample: Dict[str, str], work_dir: pathlib.Path,
                 train_steps: int, materialized: Optional[bool] = True,
                 **custom_config: Any) -> fn_args_utils.FnArgs:
  """FnArgs as TFX's GenericExecutor fills them."""
  files = [sample['transformed'] if materialized in (True, None)
           else sample['raw']]
  config = {'experiment': 'maskformer_tiny',
            'params_override': json.dumps(PARAMS_OVERRIDE)}
  if materialized is not None:
    config['materialized'] = materialized
  if materialized is False:
    config['compression_type'] = ''
  config.update(custom_config)
  return fn_args_utils.FnArgs(
      train_files=files, eval_files=files, train_steps=train_steps,
      eval_steps=1, transform_output=sample['graph'],
      model_run_dir=str(work_dir / 'model_run'),
      serving_model_dir=str(work_dir / 'serving_model'),
      custom_config=config)


def kill_at_checkpoint(process: subprocess.Popen,
                       latest_step: Callable[[], int], step: int,
                       timeout_s: float,
                       output: Callable[[], str]) -> int:
  """Kills `process` (SIGKILL) once `latest_step()` (its newest checkpoint)
  reaches `step`, and returns the newest checkpoint's step after the kill.
  Fails the test, with the end of `output()`, if the process ends first or
  no such checkpoint appears within `timeout_s`."""
  try:
    deadline = time.time() + timeout_s
    while latest_step() < step:
      if process.poll() is not None:
        pytest.fail('The training ended before it was killed: ' +
                    output()[-3000:])
      if time.time() > deadline:
        pytest.fail(f'No checkpoint of step {step} after {timeout_s} s: ' +
                    output()[-3000:])
      time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
  finally:
    process.kill()
    process.wait()
  return latest_step()
