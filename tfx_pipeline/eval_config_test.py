"""Tests of the Evaluator's gate settings: one regression tolerance."""

import pytest

from tfx_pipeline import config as pipeline_config
from tfx_pipeline import eval_config


def _change_threshold(eval_config):
  for spec in eval_config.metrics_specs:
    for metric in spec.metrics:
      if metric.threshold.HasField('change_threshold'):
        return metric.threshold.change_threshold.absolute.value
  raise AssertionError('no change threshold')


def test_default_tolerance_is_the_one_setting():
  tolerance = pipeline_config.DEFAULT_PQ_REGRESSION_TOLERANCE
  assert 0.0 < tolerance < 0.05
  assert _change_threshold(eval_config.eval_config(0.2)) == -tolerance
  config = pipeline_config.PipelineConfig(
      pipeline_root='/tmp/root', data_root='/tmp/data', output_size=64,
      num_segment_slots=8)
  assert config.pq_regression_tolerance == tolerance
  assert _change_threshold(eval_config.eval_config(0.2, 0.03)) == -0.03


@pytest.mark.parametrize('tolerance', [-0.01, 1.5])
def test_tolerance_outside_0_1_is_rejected(tolerance):
  with pytest.raises(ValueError, match='absolute PQ in \\[0, 1\\]'):
    eval_config.eval_config(0.2, tolerance)
  with pytest.raises(ValueError, match='pq_regression_tolerance is an '
                     'absolute PQ in \\[0, 1\\]'):
    pipeline_config.PipelineConfig(
        pipeline_root='/tmp/root', data_root='/tmp/data', output_size=64,
        num_segment_slots=8, pq_regression_tolerance=tolerance)
