"""A pipeline run killed (SIGKILL) during training, rerun with the same
command, resumes from its last checkpoint and pushes once; the killed run's
review page says its Trainer was interrupted; each run has its own log."""

import json
import pathlib
import re


from tests import pipeline_helpers
from trainer_module import testing

# One step per loop and a checkpoint every step, small batches.
PARAMS_OVERRIDE = {
    'task': {'train_data': {'global_batch_size': 2},
             'validation_data': {'global_batch_size': 3}},
    'trainer': {'steps_per_loop': 1, 'summary_interval': 1,
                'checkpoint_interval': 1, 'validation_interval': 1000},
}
TRAIN_STEPS = 12
KILL_AFTER_STEP = 2
STARTUP_TIMEOUT_S = 900


def _latest_step(root: pathlib.Path) -> int:
  """The step of the newest complete checkpoint: the one the checkpoint
  manager's state file names (it is written after the checkpoint's files,
  so a checkpoint whose files exist but which a kill interrupted before the
  state file was updated is not counted: a resume does not use it either)."""
  steps = [int(match.group(1))
           for path in root.glob('checkpoints/*/checkpoint')
           for match in [re.search(r'^model_checkpoint_path: "(?:.*/)?ckpt-(\d+)"',
                                   path.read_text(), re.MULTILINE)]
           if match]
  return max(steps, default=0)


def _run_id(stdout: str) -> str:
  match = re.search(r'^Run: +(\S+)$', stdout, re.MULTILINE)
  assert match, stdout
  return match.group(1)


def test_a_run_killed_in_training_resumes_with_the_same_command(
    synthetic_sample, tmp_path):
  root = tmp_path / 'root'
  command = ['run', '--data', str(synthetic_sample / 'tfrecords'),
             '--pipeline-root', str(root), '--train-steps', str(TRAIN_STEPS),
             '--output-size', '64', '--num-segment-slots', '8',
             '--eval-steps', '1', '--pq-lower-bound', '0',
             '--params-override', json.dumps(PARAMS_OVERRIDE)]
  killed_output = tmp_path / 'killed'
  process = pipeline_helpers.start_cli(command, killed_output)
  killed_at = testing.kill_at_checkpoint(
      process, lambda: _latest_step(root), KILL_AFTER_STEP, STARTUP_TIMEOUT_S,
      lambda: (killed_output / 'stderr.txt').read_text())
  assert KILL_AFTER_STEP <= killed_at < TRAIN_STEPS
  killed_stdout = (killed_output / 'stdout.txt').read_text()

  rerun = pipeline_helpers.run_cli(command, timeout=1800)
  assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
  resumed = re.search(r'Trainer: resuming from step (\d+) \(checkpoint (\S+)\)',
                      rerun.stdout)
  assert resumed, rerun.stdout
  assert int(resumed.group(1)) == killed_at
  assert 'Trainer: step 1/' not in rerun.stdout
  assert len(pipeline_helpers.pushed_versions(root)) == 1
  # The finished training's checkpoints are gone (none left to resume).
  assert not list(root.glob('checkpoints/*/ckpt-*'))

  # Each run has its own log and its own review page.
  killed_id, rerun_id = _run_id(killed_stdout), _run_id(rerun.stdout)
  assert killed_id != rerun_id
  # The killed run's lock is taken over, with a warning naming it.
  assert f'Taking over the lock of run {killed_id}' in rerun.stderr
  logs = sorted(path.name for path in (root / 'logs').iterdir())
  assert len(logs) == 2, logs
  from tfx_pipeline.report import local_root
  page = pathlib.Path(local_root.write_report(str(root), killed_id)).read_text()
  assert 'Trainer: interrupted' in page
  assert 'Trainer: running' not in page
  assert 'Trainer was interrupted' in page  # The training section says why.
