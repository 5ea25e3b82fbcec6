"""Tests of the progress lines: format, cadence, and a real Orbit loop."""

import logging
import re
import time

import orbit
import pytest
import tensorflow as tf

from trainer_module import progress

LINE = re.compile(r'^step (\d+)/(\d+)  loss (\S+)  ([\d.]+) steps/s  '
                  r'ETA (\S+)$')


class FakeClock:

  def __init__(self):
    self.now = 1000.0

  def __call__(self) -> float:
    return self.now


@pytest.mark.parametrize('seconds, text', [
    (0, '00:00'), (59.6, '01:00'), (75, '01:15'), (3600, '1:00:00'),
    (3 * 86400 + 2 * 3600 + 5, '3d 02:00:05')])
def test_durations_read_as_clock_times(seconds, text):
  assert progress.format_duration(seconds) == text


def test_lines_after_every_steps_or_interval_and_at_the_end():
  clock, step, lines = FakeClock(), [0], []
  reporter = progress.TrainProgress(100, lambda: step[0], every_steps=50,
                                    interval_s=60, clock=clock,
                                    emit=lines.append)
  step[0], clock.now = 10, clock.now + 5
  reporter({'training_loss': 2.5})
  assert not lines  # 10 steps in 5 s: not due
  step[0], clock.now = 50, clock.now + 15
  reporter({'training_loss': 2.0})
  assert lines == ['step 50/100  loss 2.0000  2.50 steps/s  ETA 00:20']
  step[0], clock.now = 60, clock.now + 61  # slow loop: due by time
  reporter({'training_loss': 1.5})
  assert lines[-1] == 'step 60/100  loss 1.5000  0.16 steps/s  ETA 04:04'
  step[0], clock.now = 100, clock.now + 4
  reporter({'training_loss': 1.0})
  assert lines[-1] == 'step 100/100  loss 1.0000  10.00 steps/s  ETA 00:00'
  assert len(lines) == 3


def test_heartbeat_reports_within_a_long_loop_and_not_after_training():
  clock, step, lines = FakeClock(), [0], []
  reporter = progress.TrainProgress(1000, lambda: step[0], every_steps=1000,
                                    interval_s=60, clock=clock,
                                    emit=lines.append)
  step[0], clock.now = 30, clock.now + 30
  reporter.heartbeat()
  assert not lines
  step[0], clock.now = 120, clock.now + 30
  reporter.heartbeat()  # no loss yet: the first loop has not finished
  assert lines == ['step 120/1000  loss -  2.00 steps/s  ETA 07:20']
  step[0], clock.now = 1000, clock.now + 60
  reporter({'training_loss': 0.5})
  clock.now += 600  # evaluation after the last step: no training line
  reporter.heartbeat()
  assert lines[-1].startswith('step 1000/1000  loss 0.5000')
  assert len(lines) == 2


def test_an_unreadable_step_keeps_the_last_known_one():
  clock, lines = FakeClock(), []

  def broken_read():
    raise RuntimeError('device busy')

  reporter = progress.TrainProgress(10, broken_read, every_steps=1,
                                    interval_s=1, clock=clock,
                                    emit=lines.append)
  clock.now += 2
  reporter.heartbeat()
  assert lines == ['step 0/10  loss -  0.00 steps/s  ETA --:--']


def test_rate_progress_first_last_and_every_interval():
  clock, lines = FakeClock(), []
  reporter = progress.RateProgress(40, 'images', lines.append,
                                   interval_s=10, clock=clock,
                                   prefix='predicted ')
  for done in range(8, 41, 8):
    clock.now += 4
    reporter.update(done)
  assert lines == ['predicted 8/40 images  2.00 images/s  ETA 00:16',
                   'predicted 32/40 images  2.00 images/s  ETA 00:04',
                   'predicted 40/40 images  2.00 images/s  ETA 00:00']
  without_total = []
  reporter = progress.RateProgress(None, 'images', without_total.append,
                                   clock=clock)
  clock.now += 20
  reporter.update(5)
  clock.now += 5
  reporter.update(10)  # not due
  reporter.finish()  # the last count is always reported
  reporter.finish()
  assert without_total == ['5 images  0.25 images/s',
                           '10 images  0.40 images/s']


def test_heartbeat_thread_reports_while_a_loop_runs():
  lines = []
  with progress.TrainProgress(10, lambda: 3, every_steps=10,
                              interval_s=0.05, emit=lines.append):
    time.sleep(0.5)
  assert lines and all(line.startswith('step 3/10  loss -') for line in lines)


class _Regression(orbit.StandardTrainer):
  """w·x → 3·x by SGD: a trainer with a real Orbit loop and a loss."""

  def __init__(self):
    self.global_step = tf.Variable(0, dtype=tf.int64, trainable=False)
    self.weight = tf.Variable(0.0)
    self.loss = tf.keras.metrics.Mean('training_loss')
    data = tf.data.Dataset.from_tensors(1.0).repeat()
    super().__init__(data)

  def train_loop_begin(self):
    self.loss.reset_state()

  def train_step(self, iterator):
    x = next(iterator)
    with tf.GradientTape() as tape:
      loss = (self.weight * x - 3.0 * x)**2
    self.weight.assign_sub(0.1 * tape.gradient(loss, self.weight))
    self.loss.update_state(loss)
    self.global_step.assign_add(1)

  def train_loop_end(self):
    return {'training_loss': self.loss.result()}


def test_orbit_controller_reports_steps_loss_rate_and_eta(caplog):
  trainer = _Regression()
  reporter = progress.TrainProgress(
      12, lambda: int(trainer.global_step.numpy()), every_steps=4,
      interval_s=600)
  controller = orbit.Controller(trainer=trainer,
                                global_step=trainer.global_step,
                                steps_per_loop=2,
                                train_actions=[reporter])
  with caplog.at_level(logging.INFO, logger=progress.LOGGER_NAME), reporter:
    controller.train(12)
  lines = [record.getMessage() for record in caplog.records
           if record.name == progress.LOGGER_NAME]
  matches = [LINE.match(line) for line in lines]
  assert all(matches), lines
  assert [int(match.group(1)) for match in matches] == [4, 8, 12], lines
  assert all(int(match.group(2)) == 12 for match in matches)
  assert float(matches[-1].group(3)) < float(matches[0].group(3))  # learns
