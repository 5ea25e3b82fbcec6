"""TFMA evaluation of exported MaskFormer models: panoptic quality and the gate.

The Evaluator feeds raw eval examples to the exported model's
`serving_examples` signature, named in the ModelSpec (predictions:
`category_mask`, `instance_mask`; `serving_default` takes images), and gets
the labels from its `transform_labels` signature (the transformed
`category_mask`, `instance_mask`), so no transformed images are held for the
eval set. `PanopticQuality` (tfx_pipeline.metrics) accumulates per-class
sums only.
"""

import json

import tensorflow_model_analysis as tfma

from tfx_pipeline import metrics
from tfx_pipeline import config as pipeline_config
from trainer_module import export

GATE_METRIC = 'pq'


def eval_config(pq_lower_bound: float,
                regression_tolerance: float = (
                    pipeline_config.DEFAULT_PQ_REGRESSION_TOLERANCE),
                inference_batch_size: int = 4) -> tfma.EvalConfig:
  """The EvalConfig: PQ/SQ/RQ, an absolute PQ bound and no regression.

  Args:
    pq_lower_bound: the candidate's PQ must be at least this (0..1).
    regression_tolerance: the candidate's PQ may be at most this much
      (absolute PQ, 0..1) lower than the last blessed model's (applies only
      when there is one; both are evaluated on this run's eval split).
    inference_batch_size: examples per model call (bounds memory).
  """
  pipeline_config.check_absolute_pq('pq_lower_bound', pq_lower_bound)
  pipeline_config.check_absolute_pq('regression_tolerance',
                                    regression_tolerance)
  mask_keys = {key: key for key in (metrics.CATEGORY_MASK_KEY,
                                    metrics.INSTANCE_MASK_KEY)}
  return tfma.EvalConfig(
      model_specs=[
          tfma.ModelSpec(
              # What TFMA would detect, stated: undeclared, it first tries
              # to load the SavedModel as a Keras model (seconds per model).
              model_type=tfma.TF_GENERIC,
              signature_name=export.SERVING_EXAMPLES,
              preprocessing_function_names=[export.TRANSFORM_LABELS],
              label_keys=mask_keys,
              prediction_keys=mask_keys,
              inference_batch_size=inference_batch_size)
      ],
      slicing_specs=[tfma.SlicingSpec()],
      metrics_specs=[
          tfma.MetricsSpec(
              metrics=[
                  tfma.MetricConfig(class_name='ExampleCount'),
                  # TFMA applies a MetricConfig's threshold to the metric
                  # named like the metric instance: `pq` here.
                  tfma.MetricConfig(
                      class_name='PanopticQuality',
                      module='tfx_pipeline.metrics',
                      config=json.dumps({'name': GATE_METRIC}),
                      threshold=tfma.MetricThreshold(
                          value_threshold=tfma.GenericValueThreshold(
                              lower_bound={'value': pq_lower_bound}),
                          change_threshold=tfma.GenericChangeThreshold(
                              direction=tfma.MetricDirection.HIGHER_IS_BETTER,
                              absolute={'value': -regression_tolerance}))),
              ],
              example_weights=tfma.ExampleWeightOptions(unweighted=True)),
      ])
