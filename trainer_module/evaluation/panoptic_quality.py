"""COCO panoptic quality (PQ): the exact per-image matching and its sums.

`image_panoptic_quality_state` reproduces the COCO panoptic API's
`pq_compute` on label maps without crowd segments: a ground-truth and a
predicted segment of the same category match when IoU > 0.5, where the union
leaves out the predicted pixels that are void in the ground truth; unmatched
ground-truth segments are false negatives; unmatched predictions are false
positives unless more than half of them lies in void. Per category PQ =
sum IoU / (TP + FP/2 + FN/2), SQ = sum IoU / TP, RQ = TP / (TP + FP/2 +
FN/2); All/Things/Stuff average the categories of the category list with
TP + FP + FN > 0 (`n` of them). Crowd regions (COCO's `iscrowd`) are handled
by `trainer_module.evaluation.coco_panoptic_quality`.

The per-image matching is TF Model Garden's
`official.vision.evaluation.panoptic_quality.PanopticQuality`; this module only
adapts the inputs (segment encoding, void) and reads its per-category sums.

A segment is one (category id, instance id) pair; category 0 is void. Where
`pq_compute` would raise (unknown category ids) this module raises ValueError;
where it would divide by zero (no category occurs in a group) the group's
values are 0.0 with n = 0.
"""

import dataclasses
from typing import Any, Dict, Mapping, Sequence

import numpy as np
from official.vision.evaluation import panoptic_quality as tfmg_panoptic_quality

VOID_CATEGORY_ID = 0
_GROUPS = (('All', ''), ('Things', '_things'), ('Stuff', '_stuff'))
_MAX_SEGMENT_ID = np.iinfo(np.uint32).max

Categories = Sequence[Mapping[str, Any]]
PanopticQualityResult = Dict[str, Any]


@dataclasses.dataclass
class PanopticQualityState:
  """Per-category PQ sums, indexed by category id; merges by addition.

  Attributes:
    iou_sum: float64 [num_slots], sum of the IoUs of the matched pairs.
    tp: float64 [num_slots], matched pairs (true positives).
    fp: float64 [num_slots], unmatched predictions not mostly in void.
    fn: float64 [num_slots], unmatched ground-truth segments.
  """
  iou_sum: np.ndarray
  tp: np.ndarray
  fp: np.ndarray
  fn: np.ndarray

  @classmethod
  def zeros(cls, num_slots: int) -> 'PanopticQualityState':
    """Returns an empty state for category ids in [0, num_slots)."""
    return cls(*(np.zeros(num_slots, np.float64) for _ in range(4)))

  def merge(self, other: 'PanopticQualityState') -> 'PanopticQualityState':
    """Adds `other` into this state and returns this state."""
    self.iou_sum += other.iou_sum
    self.tp += other.tp
    self.fp += other.fp
    self.fn += other.fn
    return self


def num_category_slots(categories: Categories) -> int:
  """Length of the per-category state arrays: the largest category id + 1."""
  return max(int(category['id']) for category in categories) + 1


def _check_category_ids(category_mask: np.ndarray, known_ids: np.ndarray,
                        name: str) -> None:
  """Raises ValueError if `category_mask` has ids outside void + categories."""
  if category_mask.size == 0:
    return
  if category_mask.min() < 0 or category_mask.max() >= known_ids.size:
    unknown = np.unique(category_mask[(category_mask < 0) |
                                      (category_mask >= known_ids.size)])
  else:
    unknown = np.unique(category_mask[~known_ids[category_mask]])
  if unknown.size:
    raise ValueError(f'{name} has category ids that are not in the categories '
                     f'list: {unknown.tolist()}')


def _to_int_mask(mask: Any, name: str) -> np.ndarray:
  """Flattens a label map to int64 pixels; PQ does not depend on the layout."""
  mask = np.asarray(mask).reshape(-1)
  int_mask = mask.astype(np.int64)
  if not np.issubdtype(mask.dtype, np.integer) and np.any(int_mask != mask):
    raise ValueError(f'{name} must hold integer ids, got {mask.dtype} values.')
  return int_mask


def image_panoptic_quality_state(gt_category: Any, gt_instance: Any,
                                 pred_category: Any, pred_instance: Any,
                                 categories: Categories
                                ) -> PanopticQualityState:
  """Matches the segments of one image and returns its per-category sums.

  Args:
    gt_category: ground-truth category id per pixel (0 = void), any shape.
    gt_instance: ground-truth instance id per pixel (>= 0), same shape.
    pred_category: predicted category id per pixel (0 = void), same size.
    pred_instance: predicted instance id per pixel (>= 0), same size.
    categories: COCO panoptic categories (dicts with `id` and `isthing`).

  Returns:
    The image's PanopticQualityState.

  Raises:
    ValueError: on mismatched sizes, negative instance ids, category ids
      outside the categories list, or ids too large to encode.
  """
  names = ('gt_category', 'gt_instance', 'pred_category', 'pred_instance')
  masks = [_to_int_mask(mask, name) for mask, name in zip(
      (gt_category, gt_instance, pred_category, pred_instance), names)]
  if len({mask.size for mask in masks}) != 1:
    raise ValueError('Label maps differ in size: ' + ', '.join(
        f'{name} {np.shape(mask)}' for name, mask in zip(
            names, (gt_category, gt_instance, pred_category, pred_instance))))
  gt_category, gt_instance, pred_category, pred_instance = masks
  num_slots = num_category_slots(categories)
  known_ids = np.zeros(num_slots, bool)
  known_ids[[int(category['id']) for category in categories]] = True
  known_ids[VOID_CATEGORY_ID] = True
  _check_category_ids(gt_category, known_ids, 'gt_category')
  _check_category_ids(pred_category, known_ids, 'pred_category')
  if gt_instance.size and min(gt_instance.min(), pred_instance.min()) < 0:
    raise ValueError('Instance ids must be >= 0.')

  # Model Garden's evaluator treats the void category's instance 0 as void
  # and its other instances as crowd regions; COCO void is a single segment.
  gt_instance = np.where(gt_category == VOID_CATEGORY_ID, 0, gt_instance)
  pred_instance = np.where(pred_category == VOID_CATEGORY_ID, 0, pred_instance)
  # Segments are encoded as category * max_instances + instance (uint32) and
  # pixel pairs as gt_segment * offset + pred_segment (uint64).
  max_instances = int(max(gt_instance.max(initial=0),
                          pred_instance.max(initial=0))) + 1
  offset = num_slots * max_instances
  if offset > _MAX_SEGMENT_ID:
    raise ValueError(f'Instance ids up to {max_instances - 1} with '
                     f'{num_slots} category slots do not fit in uint32.')
  evaluator = tfmg_panoptic_quality.PanopticQuality(
      num_categories=num_slots,
      ignored_label=VOID_CATEGORY_ID,
      max_instances_per_category=max_instances,
      offset=offset)
  # Model Garden also matches the predicted void segment with the GT void one
  # (dividing by zero when they coincide); void is no category, so its slot
  # is cleared.
  with np.errstate(divide='ignore'):
    evaluator.compare_and_accumulate(
        {'category_mask': gt_category, 'instance_mask': gt_instance},
        {'category_mask': pred_category, 'instance_mask': pred_instance})
  for per_class in (evaluator.iou_per_class, evaluator.tp_per_class,
                    evaluator.fp_per_class, evaluator.fn_per_class):
    per_class[VOID_CATEGORY_ID] = 0.0
  return PanopticQualityState(
      iou_sum=evaluator.iou_per_class,
      tp=evaluator.tp_per_class,
      fp=evaluator.fp_per_class,
      fn=evaluator.fn_per_class)


def panoptic_quality_result(state: PanopticQualityState,
                            categories: Categories) -> PanopticQualityResult:
  """Turns accumulated sums into the `pq_compute`-style result dict.

  Args:
    state: accumulated per-category sums (arrays of `num_category_slots`).
    categories: COCO panoptic categories (dicts with `id` and `isthing`).

  Returns:
    {'All'|'Things'|'Stuff': {'pq', 'sq', 'rq', 'n'}, 'per_class':
    {category_id: {'pq', 'sq', 'rq'}}} with Python floats (n is an int);
    per_class lists every category of `categories`, 0.0 where it does not
    occur.
  """
  num_slots = num_category_slots(categories)
  category_ids = [int(category['id']) for category in categories]
  counts = state.tp + state.fp + state.fn
  listed = np.zeros(num_slots, bool)
  listed[category_ids] = True
  if np.any(counts[~listed]):
    raise ValueError('The state has counts for category ids that are not in '
                     'the categories list.')
  is_thing = np.zeros(num_slots, bool)
  is_thing[category_ids] = [category['isthing'] == 1 for category in categories]
  evaluator = tfmg_panoptic_quality.PanopticQuality(
      num_categories=num_slots,
      ignored_label=VOID_CATEGORY_ID,
      max_instances_per_category=1,
      offset=1)
  evaluator.iou_per_class = state.iou_sum
  evaluator.tp_per_class = state.tp
  evaluator.fp_per_class = state.fp
  evaluator.fn_per_class = state.fn
  # Model Garden divides before masking out the categories without TP (or
  # without TP + FP + FN); the masked values are 0 as in `pq_compute`.
  with np.errstate(divide='ignore', invalid='ignore'):
    tfmg_result = evaluator.result(is_thing=is_thing)
  result = {
      group: {
          'pq': float(tfmg_result[f'{group}_pq']),
          'sq': float(tfmg_result[f'{group}_sq']),
          'rq': float(tfmg_result[f'{group}_rq']),
          'n': int(tfmg_result[f'{group}_num_categories']),
      } for group, _ in _GROUPS
  }
  result['per_class'] = {
      category_id: {
          'pq': float(tfmg_result['pq_per_class'][category_id]),
          'sq': float(tfmg_result['sq_per_class'][category_id]),
          'rq': float(tfmg_result['rq_per_class'][category_id]),
      } for category_id in category_ids
  }
  return result


def compute_panoptic_quality(gt_category: np.ndarray, gt_instance: np.ndarray,
                             pred_category: np.ndarray,
                             pred_instance: np.ndarray,
                             categories: Categories) -> PanopticQualityResult:
  """COCO panoptic quality of a set of images (non-crowd `pq_compute`).

  Args:
    gt_category: [I, H, W] ground-truth COCO category ids, 0 = void.
    gt_instance: [I, H, W] ground-truth instance ids.
    pred_category: [I, H, W] predicted COCO category ids, 0 = void.
    pred_instance: [I, H, W] predicted instance ids.
    categories: COCO panoptic categories (dicts with `id` and `isthing`).

  Returns:
    See `panoptic_quality_result`.
  """
  state = PanopticQualityState.zeros(num_category_slots(categories))
  for image_masks in zip(gt_category, gt_instance, pred_category,
                         pred_instance):
    state.merge(image_panoptic_quality_state(*image_masks, categories))
  return panoptic_quality_result(state, categories)


def metric_values(result: PanopticQualityResult) -> Dict[str, float]:
  """Flattens a result dict to the TFMA metric names (pq, sq_things, ...)."""
  values = {}
  for group, suffix in _GROUPS:
    for quantity in ('pq', 'sq', 'rq'):
      values[f'{quantity}{suffix}'] = result[group][quantity]
  for category_id, per_class in result['per_class'].items():
    values[f'pq_class_{category_id}'] = per_class['pq']
  return values
