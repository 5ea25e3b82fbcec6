"""Tests of the synthetic sample: valid COCO panoptic data, deterministic."""

import json

import numpy as np
from PIL import Image
import pytest

from panoptic_data import sample_data
from schemas import load_categories
from schemas.coco_panoptic_png import decode_segment_ids


def _check_split_consistent(files: sample_data.SplitFiles) -> int:
  """Asserts PNG ↔ JSON consistency of one split; returns its segment count."""
  data = json.loads(files.annotations_file.read_text())
  categories = {c['id']: c for c in data['categories']}
  assert len(categories) == 133
  images = {image['id']: image for image in data['images']}
  assert len(images) == len(data['annotations'])
  num_segments = 0
  for annotation in data['annotations']:
    image = images[annotation['image_id']]
    rgb = np.asarray(Image.open(files.image_dir / image['file_name']))
    assert rgb.shape == (image['height'], image['width'], 3)
    ids = decode_segment_ids(
        np.asarray(Image.open(files.panoptic_dir / annotation['file_name'])))
    png_ids = set(np.unique(ids).tolist()) - {0}
    json_ids = [s['id'] for s in annotation['segments_info']]
    assert len(json_ids) == len(set(json_ids)), 'duplicate segment ids'
    assert png_ids == set(json_ids), 'PNG ids and JSON segments differ'
    things = 0
    for segment in annotation['segments_info']:
      mask = ids == segment['id']
      assert segment['area'] == int(mask.sum())
      ys, xs = np.nonzero(mask)
      assert segment['bbox'] == [int(xs.min()), int(ys.min()),
                                 int(xs.max() - xs.min() + 1),
                                 int(ys.max() - ys.min() + 1)]
      assert segment['iscrowd'] == 0
      things += categories[segment['category_id']]['isthing']
    assert sample_data.MIN_THINGS <= things <= sample_data.MAX_THINGS
    num_segments += len(json_ids)
  return num_segments


def test_sample_png_and_json_are_self_consistent(synthetic_sample):
  for split in ('train', 'val'):
    assert _check_split_consistent(
        sample_data.split_files(synthetic_sample / 'coco', split)) > 0


def test_sample_has_things_and_stuff_with_repeated_categories(tmp_path):
  splits = sample_data.make_sample(tmp_path, num_train=20, num_val=1,
                                   image_size=64, seed=3)
  data = json.loads(splits['train'].annotations_file.read_text())
  is_thing = {c['id']: c['isthing'] for c in load_categories()}
  thing_ids, stuff_ids, repeated = set(), set(), 0
  for annotation in data['annotations']:
    categories = [s['category_id'] for s in annotation['segments_info']]
    thing_ids |= {c for c in categories if is_thing[c]}
    stuff_ids |= {c for c in categories if not is_thing[c]}
    repeated += len(categories) != len(set(categories))
  assert thing_ids == set(sample_data.THING_CATEGORIES)
  assert len(stuff_ids) >= 4
  assert repeated > 0, 'no image has two things of one category'


def test_sample_is_deterministic_for_a_seed(tmp_path):
  first = sample_data.make_sample(tmp_path / 'a', 3, 1, 48, seed=11)
  second = sample_data.make_sample(tmp_path / 'b', 3, 1, 48, seed=11)
  other = sample_data.make_sample(tmp_path / 'c', 3, 1, 48, seed=12)
  for split in ('train', 'val'):
    a = first[split].annotations_file.read_bytes()
    assert a == second[split].annotations_file.read_bytes()
    assert a != other[split].annotations_file.read_bytes()
    for path in sorted(first[split].image_dir.iterdir()):
      assert path.read_bytes() == (second[split].image_dir / path.name).read_bytes()


def test_sample_records_are_in_tfmg_format(synthetic_sample):
  import tensorflow as tf
  records = sorted((synthetic_sample / 'tfrecords').glob('train-*.tfrecord'))
  assert records
  examples = [tf.train.Example.FromString(r.numpy())
              for r in tf.data.TFRecordDataset([str(p) for p in records])]
  assert len(examples) == 6
  for example in examples:
    features = example.features.feature
    for key in ('image/encoded', 'image/source_id', 'image/panoptic/category_mask',
                'image/panoptic/instance_mask', 'image/height', 'image/width'):
      assert key in features, key
    category_mask = tf.io.decode_png(
        features['image/panoptic/category_mask'].bytes_list.value[0]).numpy()
    assert category_mask.shape == (64, 64, 1)
    assert set(np.unique(category_mask)) <= {0} | {c['id'] for c in load_categories()}


def test_make_sample_rejects_bad_sizes(tmp_path):
  with pytest.raises(ValueError, match='image-size'):
    sample_data.make_sample(tmp_path, 1, 1, image_size=8)
