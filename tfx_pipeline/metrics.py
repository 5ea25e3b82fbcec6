"""COCO panoptic quality (PQ) as a TFMA custom metric.

The exact per-image evaluator (`compute_panoptic_quality`,
`image_panoptic_quality_state`, `panoptic_quality_result`, ...) lives beside
the model in `trainer_module.evaluation.panoptic_quality`; this module adds
the TFMA metric around it.

`PanopticQuality` is a `tfma.metrics.Metric` whose Beam CombineFn keeps only
the per-category sums (IoU, TP, FP, FN), which merge by addition. Configure it
in an EvalConfig with
`tfma.MetricConfig(class_name='PanopticQuality', module='tfx_pipeline.metrics')`
and optionally `config='{"category_mask_key": ..., "categories": [...]}'`.
"""

from typing import Any, Dict, Iterable, List, Mapping, Optional

import apache_beam as beam
from tensorflow_model_analysis.metrics import metric_types
from tensorflow_model_analysis.metrics import metric_util

from schemas import load_categories
from trainer_module.evaluation.panoptic_quality import (
    Categories,
    PanopticQualityState,
    image_panoptic_quality_state,
    metric_values,
    num_category_slots,
    panoptic_quality_result,
)


CATEGORY_MASK_KEY = 'category_mask'
INSTANCE_MASK_KEY = 'instance_mask'


class _PanopticQualityCombiner(beam.CombineFn):
  """Accumulates per-category PQ sums over examples; outputs PQ metrics."""

  def __init__(self, keys: Mapping[str, metric_types.MetricKey],
               categories: Categories, model_name: str, output_name: str,
               category_mask_key: str, instance_mask_key: str):
    self._keys = dict(keys)
    self._categories = [{'id': int(category['id']),
                         'isthing': int(category['isthing'])}
                        for category in categories]
    self._num_slots = num_category_slots(self._categories)
    self._model_name = model_name
    self._output_name = output_name
    self._category_mask_key = category_mask_key
    self._instance_mask_key = instance_mask_key

  def create_accumulator(self) -> PanopticQualityState:
    return PanopticQualityState.zeros(self._num_slots)

  def _masks(self, values: Any, kind: str) -> Any:
    """Returns the (category, instance) label maps of labels/predictions."""
    if not isinstance(values, Mapping):
      raise ValueError(
          f'PanopticQuality expects the {kind} to be a dict with keys '
          f'{self._category_mask_key!r} and {self._instance_mask_key!r}, got '
          f'{type(values).__name__}.')
    missing = {self._category_mask_key, self._instance_mask_key} - set(values)
    if missing:
      raise ValueError(f'PanopticQuality: the {kind} lack {sorted(missing)}; '
                       f'they have {sorted(values)}.')
    return values[self._category_mask_key], values[self._instance_mask_key]

  def add_input(self, accumulator: PanopticQualityState,
                element: metric_types.StandardMetricInputs
               ) -> PanopticQualityState:
    model_name = self._model_name or None
    output_name = self._output_name or None
    gt_category, gt_instance = self._masks(
        element.get_labels(model_name, output_name), 'labels')
    pred_category, pred_instance = self._masks(
        element.get_predictions(model_name, output_name), 'predictions')
    return accumulator.merge(
        image_panoptic_quality_state(gt_category, gt_instance, pred_category,
                                     pred_instance, self._categories))

  def merge_accumulators(self, accumulators: Iterable[PanopticQualityState]
                        ) -> PanopticQualityState:
    accumulators = iter(accumulators)
    result = next(accumulators)
    for accumulator in accumulators:
      result.merge(accumulator)
    return result

  def extract_output(self, accumulator: PanopticQualityState
                    ) -> Dict[metric_types.MetricKey, float]:
    values = metric_values(
        panoptic_quality_result(accumulator, self._categories))
    return {key: values[name] for name, key in self._keys.items()}


def _panoptic_quality_computations(
    categories: Optional[Categories] = None,
    category_mask_key: str = CATEGORY_MASK_KEY,
    instance_mask_key: str = INSTANCE_MASK_KEY,
    model_name: str = '',
    output_name: str = '',
    example_weighted: bool = False,
    name: str = 'pq') -> metric_types.MetricComputations:
  """Returns the PQ computation for one model and output.

  `name` is the metric's TFMA name: the key a `MetricConfig.threshold`
  applies to, so it must be one of the reported names (default `pq`).
  """
  if example_weighted:
    raise ValueError(
        'PanopticQuality counts segments and does not support example '
        'weights; set example_weights { unweighted: true } in its MetricsSpec.')
  if categories is None:
    categories = load_categories()
  # The metric names are those of an (all-zero) result.
  names = metric_values(
      panoptic_quality_result(
          PanopticQualityState.zeros(num_category_slots(categories)),
          categories))
  if name not in names:
    raise ValueError(f'PanopticQuality name must be one of its metrics, e.g. '
                     f"'pq'; got {name!r}.")
  keys = {
      metric_name: metric_types.MetricKey(
          name=metric_name,
          model_name=model_name,
          output_name=output_name,
          example_weighted=example_weighted) for metric_name in names
  }
  return [
      metric_types.MetricComputation(
          keys=list(keys.values()),
          preprocessors=None,
          combiner=_PanopticQualityCombiner(
              keys=keys,
              categories=categories,
              model_name=model_name,
              output_name=output_name,
              category_mask_key=category_mask_key,
              instance_mask_key=instance_mask_key))
  ]


class PanopticQuality(metric_types.Metric):
  """COCO panoptic quality as a TFMA metric.

  Labels and predictions of each example are dicts holding a category map and
  an instance map (any shape, e.g. [H, W], [1, H, W] or flattened; both must
  have the same number of pixels). Reports `pq`, `sq`, `rq`, `pq_things`,
  `sq_things`, `rq_things`, `pq_stuff`, `sq_stuff`, `rq_stuff` and
  `pq_class_<category id>` for every category.
  """

  def __init__(self,
               categories: Optional[List[Dict[str, Any]]] = None,
               category_mask_key: str = CATEGORY_MASK_KEY,
               instance_mask_key: str = INSTANCE_MASK_KEY,
               name: str = 'pq'):
    """Initializes the metric.

    Args:
      categories: COCO panoptic categories (dicts with `id` and `isthing`);
        None loads `schemas/panoptic_coco_categories.json` from the installed
        `schemas` package.
      category_mask_key: key of the category map in labels and predictions.
      instance_mask_key: key of the instance map in labels and predictions.
      name: the reported metric that thresholds in this metric's
        `MetricConfig` apply to (TFMA keys a MetricConfig's threshold by the
        metric's name).
    """
    super().__init__(
        metric_util.merge_per_key_computations(_panoptic_quality_computations),
        categories=categories,
        category_mask_key=category_mask_key,
        instance_mask_key=instance_mask_key,
        name=name)


metric_types.register_metric(PanopticQuality)
