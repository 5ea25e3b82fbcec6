"""Tests of what `maskformer-tfx run` prints on the terminal."""

import io
import logging

from runners import run_output
from trainer_module import progress


def test_progress_lines_of_the_running_component_reach_the_terminal():
  terminal = io.StringIO()
  logger = logging.getLogger('run_output_test')
  handler = run_output.ComponentProgress(terminal)
  logger.addHandler(handler)
  progress_logger = logging.getLogger(progress.LOGGER_NAME)
  progress_logger.addHandler(handler)
  try:
    logger.setLevel(logging.INFO)
    progress_logger.setLevel(logging.INFO)
    logger.info(run_output._RUNNING, 'Trainer')
    logger.info('a TensorFlow log line')
    progress_logger.info('step %d/%d  loss 1.0000', 50, 150)
    logger.info(run_output._FINISHED, 'Trainer')
  finally:
    logger.removeHandler(handler)
    progress_logger.removeHandler(handler)
  lines = [line.split('] ', 1)[1] for line in terminal.getvalue().splitlines()]
  assert lines == ['Trainer started', 'Trainer: step 50/150  loss 1.0000',
                   'Trainer finished (0 s)']
