"""What a person sees during a run: component progress on the terminal, the
rest (TF/absl/Beam logs, C++ stderr, warnings) in a log file."""

import contextlib
import datetime
import logging
import os
import sys
import time
from typing import Dict, Iterator, List, TextIO

from absl import logging as absl_logging
from tfx.types.artifact import Artifact

from trainer_module import progress as training_progress

_RUNNING = 'Component %s is running.'
_FINISHED = 'Component %s is finished.'
_PUBLISHING = 'Publishing output artifacts %s for execution %s'
_CACHED = 'A cached execution %d is used.'


class ComponentProgress(logging.Handler):
  """Prints each component's start, finish, duration and output locations,
  and the progress lines (`trainer_module.progress`) of the running one."""

  def __init__(self, stream: TextIO):
    super().__init__(level=logging.INFO)
    self._stream = stream
    self._started: Dict[str, float] = {}
    self._outputs: Dict[str, List[Artifact]] = {}
    self._cached = False
    self.finished: List[str] = []
    self.outputs: Dict[str, Dict[str, List[Artifact]]] = {}

  def _print(self, text: str) -> None:
    stamp = datetime.datetime.now().strftime('%H:%M:%S')
    self._stream.write(f'[{stamp}] {text}\n')
    self._stream.flush()

  def emit(self, record: logging.LogRecord) -> None:
    if record.name == training_progress.LOGGER_NAME:
      running = [node for node in self._started if node not in self.finished]
      node = running[-1] if running else 'progress'
      self._print(f'{node}: {record.getMessage()}')
    elif record.msg == _RUNNING:
      node = record.args[0]
      self._started[node] = time.monotonic()
      self._outputs, self._cached = {}, False
      self._print(f'{node} started')
    elif record.msg == _PUBLISHING:
      self._outputs = {key: list(artifacts)
                       for key, artifacts in record.args[0].items()}
    elif record.msg == _CACHED:
      self._cached = True
    elif record.msg == _FINISHED:
      node = record.args[0]
      seconds = time.monotonic() - self._started.get(node, time.monotonic())
      note = ', cached' if self._cached else ''
      self._print(f'{node} finished ({seconds:.0f} s{note})')
      for key, artifacts in sorted(self._outputs.items()):
        for artifact in artifacts:
          self._stream.write(f'           {key}: {artifact.uri}\n')
      self._stream.flush()
      self.finished.append(node)
      self.outputs[node] = self._outputs


@contextlib.contextmanager
def logs_to_file(log_path: str) -> Iterator[ComponentProgress]:
  """Sends all logging and stdout/stderr to `log_path`; yields the progress
  handler, which writes to the original terminal."""
  os.makedirs(os.path.dirname(log_path), exist_ok=True)
  sys.stdout.flush()
  sys.stderr.flush()
  saved_stdout, saved_stderr = os.dup(1), os.dup(2)
  terminal = os.fdopen(os.dup(saved_stdout), 'w', buffering=1)
  root = logging.getLogger()
  saved_handlers, saved_level = list(root.handlers), root.level
  with open(log_path, 'a', buffering=1) as log_file:
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)
    file_handler = logging.StreamHandler(log_file)
    file_handler.setFormatter(logging.Formatter(
        '%(asctime)s %(levelname)s %(name)s: %(message)s'))
    progress = ComponentProgress(terminal)
    root.handlers = [file_handler, progress]
    root.setLevel(logging.INFO)
    absl_logging.set_verbosity(absl_logging.INFO)
    logging.captureWarnings(True)
    try:
      yield progress
    finally:
      logging.captureWarnings(False)
      root.handlers, root.level = saved_handlers, saved_level
      sys.stdout.flush()
      sys.stderr.flush()
      os.dup2(saved_stdout, 1)
      os.dup2(saved_stderr, 2)
      os.close(saved_stdout)
      os.close(saved_stderr)
      terminal.close()
