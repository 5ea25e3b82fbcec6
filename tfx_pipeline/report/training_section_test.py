"""TensorBoard scalars as the Training section reads them."""

import numpy as np
import tensorflow as tf

from tfx_pipeline.report import training_section


def test_read_scalar_summaries_returns_what_was_written(tmp_path):
  written = {'train': {'total_loss': [(1, 3.0), (2, 2.5)],
                       'learning_rate': [(1, 1e-4), (2, 5e-5)]},
             'validation': {'pq': [(2, 0.125)]}}
  for subdir, tags in written.items():
    writer = tf.summary.create_file_writer(str(tmp_path / subdir))
    with writer.as_default():
      for tag, points in tags.items():
        for step, value in points:
          tf.summary.scalar(tag, value, step=step)
      tf.summary.text('note', 'not a scalar', step=1)
    writer.close()
  series = training_section.read_scalar_summaries(str(tmp_path))
  assert set(series) == set(written)
  for subdir, tags in written.items():
    assert set(series[subdir]) == set(tags)
    for tag, points in tags.items():
      steps, values = zip(*series[subdir][tag])
      assert list(steps) == [step for step, _ in points]
      np.testing.assert_allclose(values, [value for _, value in points],
                                 rtol=1e-6)
