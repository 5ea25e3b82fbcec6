"""COCO-rule PQ (crowd included) against the COCO panoptic API itself.

Predictions are derived from the real sample's ground truth (two COCO val2017
images with three crowd segments) so that every rule is exercised: exact and
shifted segments, dropped segments, wrong categories, predictions over a
crowd region of their own and of another category, predictions in void.
`panopticapi.evaluation.pq_compute` scores the same files.
"""

import json
import pathlib

import numpy as np
from panopticapi import evaluation
from PIL import Image
import pytest

from schemas.coco_panoptic_png import decode_segment_ids
from schemas.coco_panoptic_png import encode_segment_ids
from trainer_module.evaluation import coco_panoptic_quality
from trainer_module.evaluation import panoptic_quality


def _read_ids(path: pathlib.Path) -> np.ndarray:
  return decode_segment_ids(np.asarray(Image.open(path).convert('RGB')))


def _predict_from_ground_truth(gt_ids, segments, categories, rng):
  """A prediction that hits every COCO rule; returns (ids, segments_info)."""
  things = [c['id'] for c in categories if c['isthing']]
  stuff = [c['id'] for c in categories if not c['isthing']]
  pred = np.zeros_like(gt_ids)
  infos = []

  def add(pixels, category_id):
    segment_id = len(infos) + 1
    pred[pixels] = segment_id
    infos.append({'id': segment_id, 'category_id': int(category_id)})

  for index, segment in enumerate(segments):
    pixels = gt_ids == segment['id']
    category_id = segment['category_id']
    if segment['iscrowd']:
      # Over its own crowd region: ignored. Over another category's: an FP
      # (the other category has no crowd region here).
      other = things[(things.index(category_id) + 1) % len(things)]
      add(pixels, category_id if index % 2 else other)
      continue
    rule = index % 5
    if rule == 0:
      continue  # Dropped: a false negative.
    if rule == 1:
      add(pixels, category_id)  # Exact.
    elif rule == 2:
      shift = int(rng.integers(2, 30))
      add(np.roll(pixels, shift, axis=1), category_id)  # IoU below 1.
    elif rule == 3:
      pool = things if category_id in things else stuff
      add(pixels, pool[(pool.index(category_id) + 3) % len(pool)])
    else:
      # Half of it, plus void pixels.
      ys, _ = np.nonzero(pixels)
      half = pixels & (np.arange(gt_ids.shape[0])[:, None] < np.median(ys))
      add(half | ((gt_ids == 0) & (rng.random(gt_ids.shape) < 0.3)),
          category_id)
  # A segment mostly in void: not a false positive.
  void = gt_ids == 0
  if void.any():
    add(void & (rng.random(gt_ids.shape) < 0.8), stuff[0])
  present = set(np.unique(pred).tolist()) - {0}
  return pred, [info for info in infos if info['id'] in present]


def test_matches_the_coco_panoptic_api_with_crowd(coco_sample_dir, tmp_path):
  ground_truth = json.loads(
      (coco_sample_dir / 'panoptic_examples.json').read_text())
  categories = ground_truth['categories']
  assert sum(s['iscrowd'] for a in ground_truth['annotations']
             for s in a['segments_info']) == 3
  rng = np.random.default_rng(0)
  pred_dir = tmp_path / 'predictions'
  pred_dir.mkdir()
  annotations = []
  state = panoptic_quality.PanopticQualityState.zeros(
      panoptic_quality.num_category_slots(categories))
  for gt_annotation in ground_truth['annotations']:
    gt_ids = _read_ids(coco_sample_dir / 'panoptic_examples' /
                       gt_annotation['file_name'])
    pred_ids, infos = _predict_from_ground_truth(
        gt_ids, gt_annotation['segments_info'], categories, rng)
    Image.fromarray(encode_segment_ids(pred_ids)).save(
        pred_dir / gt_annotation['file_name'])
    annotations.append({'image_id': gt_annotation['image_id'],
                        'file_name': gt_annotation['file_name'],
                        'segments_info': infos})
    state.merge(coco_panoptic_quality.coco_image_panoptic_quality_state(
        gt_ids, gt_annotation['segments_info'], pred_ids, infos, categories))
  pred_json = tmp_path / 'predictions.json'
  pred_json.write_text(json.dumps({'annotations': annotations}))

  expected = evaluation.pq_compute(
      str(coco_sample_dir / 'panoptic_examples.json'), str(pred_json),
      gt_folder=str(coco_sample_dir / 'panoptic_examples'),
      pred_folder=str(pred_dir))
  result = panoptic_quality.panoptic_quality_result(state, categories)

  assert 0.2 < expected['All']['pq'] < 0.9  # Neither trivial nor empty.
  for group in ('All', 'Things', 'Stuff'):
    for key in ('pq', 'sq', 'rq'):
      assert result[group][key] == pytest.approx(expected[group][key],
                                                 abs=1e-12), (group, key)
    assert result[group]['n'] == expected[group]['n']
  for category_id, values in expected['per_class'].items():
    for key in ('pq', 'sq', 'rq'):
      assert result['per_class'][int(category_id)][key] == pytest.approx(
          values[key], abs=1e-12), (category_id, key)
  # Crowd matters: with iscrowd ignored the counts differ
  no_crowd = panoptic_quality.PanopticQualityState.zeros(
      panoptic_quality.num_category_slots(categories))
  for gt_annotation, annotation in zip(ground_truth['annotations'],
                                       annotations):
    no_crowd.merge(coco_panoptic_quality.coco_image_panoptic_quality_state(
        _read_ids(coco_sample_dir / 'panoptic_examples' /
                  gt_annotation['file_name']),
        [dict(s, iscrowd=0) for s in gt_annotation['segments_info']],
        _read_ids(pred_dir / annotation['file_name']),
        annotation['segments_info'], categories))
  # (the prediction over its own crowd region becomes a true positive).
  assert no_crowd.tp.sum() > state.tp.sum()


def test_predicted_ids_missing_from_json_or_png_are_refused():
  categories = [{'id': 1, 'isthing': 1}, {'id': 92, 'isthing': 0}]
  gt_ids = np.array([[1, 1], [2, 0]])
  gt_segments = [{'id': 1, 'category_id': 1, 'iscrowd': 0, 'area': 2},
                 {'id': 2, 'category_id': 92, 'iscrowd': 0, 'area': 1}]
  pred_ids = np.array([[5, 5], [7, 0]])
  with pytest.raises(ValueError, match=r'img\.png: .*\[7\].*not in '
                     'segments_info'):
    coco_panoptic_quality.coco_image_panoptic_quality_state(
        gt_ids, gt_segments, pred_ids, [{'id': 5, 'category_id': 1}],
        categories, image='img.png')
  with pytest.raises(ValueError, match=r'\[9\].*not in the PNG'):
    coco_panoptic_quality.coco_image_panoptic_quality_state(
        gt_ids, gt_segments, pred_ids,
        [{'id': 5, 'category_id': 1}, {'id': 7, 'category_id': 92},
         {'id': 9, 'category_id': 1}], categories)
  with pytest.raises(ValueError, match='category id 3'):
    coco_panoptic_quality.coco_image_panoptic_quality_state(
        gt_ids, gt_segments, pred_ids,
        [{'id': 5, 'category_id': 3}, {'id': 7, 'category_id': 92}],
        categories)
