"""Progress lines for long loops: training steps, predicted images.

`TrainProgress` is an Orbit train action (`train_lib.run_experiment(...,
train_actions=[...])`) that logs one line

  step S/T  loss L  X steps/s  ETA mm:ss

to the `LOGGER_NAME` logger after an Orbit loop when `every_steps` steps or
`interval_s` seconds have passed since the last line, and at the last step.
Within a long loop (the reference config runs 1000 steps per loop) a
heartbeat thread logs the same line, with the loss of the last finished loop,
whenever `interval_s` seconds pass without one. Logging reaches stderr on
Vertex AI (absl's handler) and the terminal of `maskformer-tfx run`
(`runners.run_output` prints this logger's records).

`RateProgress` prints `done/total unit  X unit/s  ETA mm:ss` lines for loops
over items (`predict`, `evaluate-coco`).
"""

import logging
import threading
import time
from typing import Any, Callable, Mapping, Optional

import numpy as np

LOGGER_NAME = 'maskformer_tfx.progress'
DEFAULT_INTERVAL_S = 60.0
LOSS_KEY = 'training_loss'

Clock = Callable[[], float]


def format_duration(seconds: float) -> str:
  """mm:ss, h:mm:ss past an hour, `Dd hh:mm:ss` past a day."""
  seconds = max(0, int(round(seconds)))
  days, rest = divmod(seconds, 86400)
  hours, rest = divmod(rest, 3600)
  minutes, secs = divmod(rest, 60)
  if days:
    return f'{days}d {hours:02d}:{minutes:02d}:{secs:02d}'
  if hours:
    return f'{hours}:{minutes:02d}:{secs:02d}'
  return f'{minutes:02d}:{secs:02d}'


def _eta(remaining: float, rate: float) -> str:
  return format_duration(remaining / rate) if rate > 0 else '--:--'


class RateProgress:
  """Reports `done` of `total` items (rate, ETA) at most every `interval_s`
  seconds, and always at the first update and at the total (or `finish()`).

  `emit(line)` receives each line; `total` may be None (then no ETA).
  """

  def __init__(self, total: Optional[int], unit: str,
               emit: Callable[[str], None], interval_s: float = 10.0,
               clock: Clock = time.monotonic, prefix: str = ''):
    self._total, self._unit, self._emit = total, unit, emit
    self._interval_s, self._clock, self._prefix = interval_s, clock, prefix
    self._start = clock()
    self._last: Optional[float] = None
    self._done = self._reported = 0

  def update(self, done: int) -> None:
    """`done` items so far: a line if due."""
    self._done = done
    now = self._clock()
    final = self._total is not None and done >= self._total
    if (self._last is not None and not final and
        now - self._last < self._interval_s):
      return
    self._report(done, now)

  def finish(self) -> None:
    """A last line, unless the last update was reported."""
    if self._done != self._reported:
      self._report(self._done, self._clock())

  def _report(self, done: int, now: float) -> None:
    self._last, self._reported = now, done
    elapsed = now - self._start
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f'{done}/{self._total}' if self._total is not None else str(done)
    line = f'{self._prefix}{count} {self._unit}  {rate:.2f} {self._unit}/s'
    if self._total is not None:
      line += f'  ETA {_eta(self._total - done, rate)}'
    self._emit(line)


class TrainProgress:
  """Orbit train action and heartbeat that log training progress.

  Use as a context manager around the training (it runs the heartbeat
  thread) and pass it in `train_actions`.

  Args:
    total_steps: The step training ends at (`trainer.train_steps`).
    read_step: Returns the current global step (e.g.
      `lambda: int(trainer.global_step.numpy())`).
    every_steps: A line after a loop when this many steps have passed since
      the last one (e.g. `trainer.summary_interval`).
    interval_s: A line at least this often while training.
    clock: Monotonic seconds (injectable for tests).
    emit: Receives each line (default: INFO on the `LOGGER_NAME` logger).
  """

  def __init__(self, total_steps: int, read_step: Callable[[], int],
               every_steps: int, interval_s: float = DEFAULT_INTERVAL_S,
               clock: Clock = time.monotonic,
               emit: Optional[Callable[[str], None]] = None):
    self._total = int(total_steps)
    self._read_step = read_step
    self._every_steps = max(1, int(every_steps))
    self._interval_s = float(interval_s)
    self._clock = clock
    self._emit = emit or logging.getLogger(LOGGER_NAME).info
    self._lock = threading.Lock()
    self._stop = threading.Event()
    self._thread: Optional[threading.Thread] = None
    self._loss: Optional[float] = None
    self._step = self._safe_read_step(0)
    self._last_time = clock()
    self._last_step = self._step

  def _safe_read_step(self, fallback: int) -> int:
    try:
      return int(self._read_step())
    except Exception:
      return fallback  # e.g. a device busy or gone: keep the last known step

  def line(self, step: int, now: float) -> str:
    """The progress line at `step` (rate since the last line)."""
    seconds = now - self._last_time
    rate = (step - self._last_step) / seconds if seconds > 0 else 0.0
    loss = f'{self._loss:.4f}' if self._loss is not None else '-'
    return (f'step {step}/{self._total}  loss {loss}  {rate:.2f} steps/s  '
            f'ETA {_eta(self._total - step, rate)}')

  def _report(self, step: int, now: float) -> None:
    text = self.line(step, now)
    self._last_time, self._last_step = now, step
    self._emit(text)

  def __call__(self, train_output: Mapping[str, Any]) -> None:
    """Orbit train action: called after each loop with its outputs."""
    with self._lock:
      if LOSS_KEY in train_output:
        self._loss = float(np.asarray(train_output[LOSS_KEY]))
      self._step = self._safe_read_step(self._step)
      now = self._clock()
      if (self._step >= self._total or
          self._step - self._last_step >= self._every_steps or
          now - self._last_time >= self._interval_s):
        self._report(self._step, now)

  def heartbeat(self) -> None:
    """Logs a line if none came for `interval_s` (the heartbeat thread's
    check; public so that tests can drive it with a fake clock)."""
    with self._lock:
      now = self._clock()
      if (self._step < self._total and
          now - self._last_time >= self._interval_s):
        self._step = self._safe_read_step(self._step)
        self._report(self._step, now)

  def _run_heartbeat(self) -> None:
    while not self._stop.wait(min(self._interval_s, 5.0)):
      self.heartbeat()

  def __enter__(self) -> 'TrainProgress':
    self._thread = threading.Thread(target=self._run_heartbeat, daemon=True,
                                    name='train-progress')
    self._thread.start()
    return self

  def __exit__(self, *exc_info) -> None:
    self._stop.set()
    if self._thread is not None:
      self._thread.join()


def for_trainer(params: Any, trainer: Any,
                interval_s: float = DEFAULT_INTERVAL_S) -> TrainProgress:
  """The `TrainProgress` of a TFMG experiment's `trainer`: up to
  `params.trainer.train_steps`, a line at least every summary interval
  (default: every loop) and every `interval_s` seconds."""
  every_steps = (params.trainer.summary_interval or
                 params.trainer.steps_per_loop)
  return TrainProgress(params.trainer.train_steps,
                       lambda: int(trainer.global_step.numpy()),
                       every_steps=every_steps, interval_s=interval_s)
