"""COCO panoptic quality with the COCO panoptic API's rules, crowd included.

Works on what the COCO panoptic format holds: per image a segment-id map
(id = R + 256·G + 256²·B, 0 = void) and its `segments_info` ({id,
category_id, iscrowd, area}). The rules are `panopticapi.evaluation.pq_compute`'s
(Kirillov et al. 2019, COCO panoptic evaluation):

* A non-crowd ground-truth segment g and a predicted segment p of the same
  category match when IoU > 0.5, with union = area(p) + area(g) −
  |p ∩ g| − |p ∩ void|. The ground-truth area is its JSON `area` (as the API
  reads it), the predicted area its pixel count.
* Crowd ground-truth segments never match and are no false negatives;
  unmatched non-crowd ground-truth segments are false negatives.
* An unmatched prediction is a false positive unless more than half of it
  lies in void plus the crowd region of its own category (the API keeps one
  crowd segment per category and image: the last one listed).

The per-category sums are a `PanopticQualityState`, so PQ/SQ/RQ (All, Things,
Stuff, per class) come from `panoptic_quality.panoptic_quality_result`.
"""

from typing import Any, Dict, Mapping, Sequence

import numpy as np

from trainer_module.evaluation.panoptic_quality import Categories
from trainer_module.evaluation.panoptic_quality import num_category_slots
from trainer_module.evaluation.panoptic_quality import PanopticQualityState

VOID_SEGMENT_ID = 0
_PAIR_OFFSET = np.uint64(256**3)  # Segment ids are 24-bit RGB values.

Segments = Sequence[Mapping[str, Any]]


def _segment_table(segments: Segments, known_ids: np.ndarray, what: str
                  ) -> Dict[int, Mapping[str, Any]]:
  table = {}
  for segment in segments:
    segment_id = int(segment['id'])
    category_id = int(segment['category_id'])
    if segment_id in table:
      raise ValueError(f'{what}: segment id {segment_id} is listed twice.')
    if not 0 < category_id < known_ids.size or not known_ids[category_id]:
      raise ValueError(f'{what}: segment {segment_id} has category id '
                       f'{category_id}, which is not in the categories.')
    table[segment_id] = segment
  return table


def coco_image_panoptic_quality_state(gt_ids: np.ndarray, gt_segments: Segments,
                                      pred_ids: np.ndarray,
                                      pred_segments: Segments,
                                      categories: Categories,
                                      image: str = 'image'
                                     ) -> PanopticQualityState:
  """Matches one image's segments with the COCO rules (module docstring).

  Args:
    gt_ids: [H, W] ground-truth segment ids (0 = void).
    gt_segments: Ground-truth `segments_info` (id, category_id, iscrowd,
      area).
    pred_ids: [H, W] predicted segment ids (0 = void).
    pred_segments: Predicted `segments_info` (id, category_id).
    categories: COCO panoptic categories (dicts with `id` and `isthing`).
    image: Name of the image for error messages.

  Returns:
    The image's per-category sums.

  Raises:
    ValueError: the maps differ in size, a predicted id is missing from the
      PNG or the JSON, or a category id is unknown (the message names the
      image), as `pq_compute` refuses such predictions.
  """
  gt_ids = np.asarray(gt_ids, np.uint64)
  pred_ids = np.asarray(pred_ids, np.uint64)
  if gt_ids.shape != pred_ids.shape:
    raise ValueError(f'{image}: the prediction is {pred_ids.shape[:2]} '
                     f'pixels, the ground truth {gt_ids.shape[:2]}.')
  num_slots = num_category_slots(categories)
  known_ids = np.zeros(num_slots, bool)
  known_ids[[int(category['id']) for category in categories]] = True
  gt_table = _segment_table(gt_segments, known_ids, f'{image} ground truth')
  pred_table = _segment_table(pred_segments, known_ids, f'{image} prediction')

  pred_labels, pred_counts = np.unique(pred_ids, return_counts=True)
  pred_area = dict(zip(pred_labels.tolist(), pred_counts.tolist()))
  pred_area.pop(VOID_SEGMENT_ID, None)
  not_in_json = sorted(set(pred_area) - set(pred_table))
  if not_in_json:
    raise ValueError(f'{image}: predicted segment ids {not_in_json} are in '
                     'the PNG but not in segments_info.')
  not_in_png = sorted(set(pred_table) - set(pred_area))
  if not_in_png:
    raise ValueError(f'{image}: predicted segment ids {not_in_png} are in '
                     'segments_info but not in the PNG.')

  pairs, counts = np.unique(gt_ids * _PAIR_OFFSET + pred_ids,
                            return_counts=True)
  intersections = {
      (int(pair // _PAIR_OFFSET), int(pair % _PAIR_OFFSET)): int(count)
      for pair, count in zip(pairs.tolist(), counts.tolist())}

  state = PanopticQualityState.zeros(num_slots)
  gt_matched, pred_matched = set(), set()
  for (gt_id, pred_id), intersection in intersections.items():
    gt_segment = gt_table.get(gt_id)
    pred_segment = pred_table.get(pred_id)
    if gt_segment is None or pred_segment is None:
      continue
    if gt_segment.get('iscrowd', 0) == 1:
      continue
    category_id = int(gt_segment['category_id'])
    if category_id != int(pred_segment['category_id']):
      continue
    union = (pred_area[pred_id] + int(gt_segment['area']) - intersection -
             intersections.get((VOID_SEGMENT_ID, pred_id), 0))
    iou = intersection / union
    if iou > 0.5:
      state.tp[category_id] += 1
      state.iou_sum[category_id] += iou
      gt_matched.add(gt_id)
      pred_matched.add(pred_id)

  crowd_by_category = {}
  for gt_id, gt_segment in gt_table.items():
    if gt_id in gt_matched:
      continue
    if gt_segment.get('iscrowd', 0) == 1:
      crowd_by_category[int(gt_segment['category_id'])] = gt_id
      continue
    state.fn[int(gt_segment['category_id'])] += 1

  for pred_id, pred_segment in pred_table.items():
    if pred_id in pred_matched:
      continue
    category_id = int(pred_segment['category_id'])
    ignored = intersections.get((VOID_SEGMENT_ID, pred_id), 0)
    if category_id in crowd_by_category:
      ignored += intersections.get((crowd_by_category[category_id], pred_id),
                                   0)
    if ignored / pred_area[pred_id] > 0.5:
      continue
    state.fp[category_id] += 1
  return state
