"""Acceptance test on two real COCO images converted by TFMG's converter.

The Transform runs on Beam at S=640, N=100; every segment of the COCO panoptic
JSON must come out as exactly one slot with the right class whose mask matches
the segment decoded from the COCO PNG (segment id = R + 256·G + 256²·B).
"""

import json
import math
import pathlib

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from schemas import load_categories
from schemas.coco_panoptic_png import decode_segment_ids
from transform_module import beam_runner
from transform_module import encoding
from transform_module import preprocessing

_S = 640
_N = 100
_CONFIG = {'output_size': _S, 'num_segment_slots': _N}


def _segment_ids(png_path: pathlib.Path) -> np.ndarray:
  return decode_segment_ids(np.asarray(Image.open(png_path).convert('RGB')))


def _resize_nearest_and_pad(mask: np.ndarray) -> np.ndarray:
  height, width = mask.shape
  longer = max(height, width)
  new_size = [max(1, math.floor(side * _S / longer + 0.5))
              for side in (height, width)]
  rows = [math.floor((y + 0.5) * height / new_size[0])
          for y in range(new_size[0])]
  cols = [math.floor((x + 0.5) * width / new_size[1])
          for x in range(new_size[1])]
  padded = np.zeros([_S, _S], mask.dtype)
  padded[:new_size[0], :new_size[1]] = mask[np.ix_(rows, cols)]
  return padded


@pytest.mark.parametrize('skip_crowd', [False, True],
                         ids=['crowd_kept', 'panoptic_skip_crowd'])
def test_real_coco_segments_become_slots(coco_sample_dir, request, tmp_path,
                                         skip_crowd):
  records_dir = request.getfixturevalue(
      'real_coco_records_skip_crowd' if skip_crowd else 'real_coco_records')
  output_dir = str(tmp_path / 'transformed')
  beam_runner.run_transform(str(records_dir / 'val-*.tfrecord'), output_dir,
                            _CONFIG)
  outputs = beam_runner.read_transformed_examples(output_dir)

  panoptic = json.loads(
      (coco_sample_dir / 'panoptic_examples.json').read_text())
  categories = {c['id']: (index, c['isthing']) for index, c in
                enumerate(load_categories())}
  images = {image['id']: image for image in panoptic['images']}
  assert sorted(outputs) == sorted(str(i) for i in images)
  for annotation in panoptic['annotations']:
    image = images[annotation['image_id']]
    actual = outputs[str(annotation['image_id'])]
    np.testing.assert_array_equal(actual['original_size'],
                                  [image['height'], image['width']])
    decoded = np.asarray(Image.open(
        coco_sample_dir / 'input_images' / image['file_name']).convert('RGB'))
    np.testing.assert_allclose(
        actual['image'][:image['height'], :image['width']].astype(int),
        decoded.astype(int), atol=1)

    segment_ids = _segment_ids(coco_sample_dir / 'panoptic_examples' /
                               annotation['file_name'])
    segments = [s for s in annotation['segments_info']
                if not (skip_crowd and s['iscrowd'])]
    expected_category = np.zeros_like(segment_ids)
    matched_slots = []
    for segment in segments:
      mask = _resize_nearest_and_pad(segment_ids == segment['id'])
      assert mask.any(), f'segment {segment["id"]} vanished'
      expected_category[segment_ids == segment['id']] = segment['category_id']
      slots, counts = np.unique(actual['segment_map'][mask],
                                return_counts=True)
      slot = int(slots[np.argmax(counts)])
      assert slot >= 0, f'segment {segment["id"]} has no slot'
      slot_mask = actual['segment_map'] == slot
      iou = (mask & slot_mask).sum() / (mask | slot_mask).sum()
      assert iou >= 0.99, (segment, iou)
      contiguous, is_thing = categories[segment['category_id']]
      assert actual['segment_classes'][slot] == contiguous
      assert actual['segment_is_thing'][slot] == is_thing
      matched_slots.append(slot)
    assert sorted(matched_slots) == list(range(len(segments)))
    assert actual['num_segments'] == len(segments)
    assert actual['num_dropped_segments'] == 0
    assert np.all(actual['segment_classes'][len(segments):] == -1)
    np.testing.assert_array_equal(actual['category_mask'],
                                  _resize_nearest_and_pad(expected_category))
    assert np.all((actual['segment_map'] == -1)
                  == (actual['category_mask'] == 0))


@pytest.mark.parametrize('output_size', [640, 320, 800])
def test_model_sees_the_pixels_of_the_float32_contract(real_coco_records,
                                                       output_size):
  """The uint8 image equals the former float32 output computed here.

  The former contract stored round(clip(antialiased bilinear resize)) of the
  decoded image as float32; the model normalises whatever it reads, so equal
  values mean the model sees the same input. S = 640 is the identity resize
  of these images (longer side 640), 320 and 800 resize them.
  """
  records = [record.numpy() for record in tf.data.TFRecordDataset(
      sorted(str(path) for path in real_coco_records.glob('val-*')))]
  raw = tf.io.parse_example(records, preprocessing.raw_feature_spec())
  outputs = encoding.decode_transformed(preprocessing.preprocessing_fn(
      raw, {'output_size': output_size, 'num_segment_slots': _N}))
  for index, encoded in enumerate(raw['image/encoded']):
    decoded = tf.cast(tf.io.decode_jpeg(
        encoded, channels=3, dct_method='INTEGER_ACCURATE'), tf.float32)
    height, width = decoded.shape[:2]
    longer = max(height, width)
    new_size = [max(1, math.floor(side * output_size / longer + 0.5))
                for side in (height, width)]
    reference = np.zeros([output_size, output_size, 3], np.float32)
    reference[:new_size[0], :new_size[1]] = tf.clip_by_value(tf.round(
        tf.image.resize(decoded, new_size, antialias=True)), 0.0, 255.0)
    image = outputs['image'][index].numpy()
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image.astype(np.float32), reference)
    valid = np.zeros([output_size, output_size], np.int32)
    valid[:new_size[0], :new_size[1]] = 1
    np.testing.assert_array_equal(outputs['pixel_valid'][index], valid)
