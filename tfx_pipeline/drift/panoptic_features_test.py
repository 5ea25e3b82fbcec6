import numpy as np
import pytest
import tensorflow as tf

from tfx_pipeline.drift import panoptic_features
from tfx_pipeline.drift import testing

PERSON, SKY, GRASS = 1, 187, 193


@pytest.fixture(scope='module')
def derive():
  return panoptic_features.FeatureDeriver()


def test_segments_of_a_known_mask(derive):
  # 4×5 image: sky on top (8 px), grass below (6 px), two persons (3 px and
  # 2 px) and one void pixel.
  category = np.array([[SKY, SKY, SKY, SKY, SKY],
                       [SKY, SKY, SKY, PERSON, PERSON],
                       [GRASS, PERSON, GRASS, PERSON, GRASS],
                       [GRASS, PERSON, GRASS, GRASS, 0]])
  instance = np.array([[0, 0, 0, 0, 0],
                       [0, 0, 0, 2, 2],
                       [0, 1, 0, 2, 0],
                       [0, 1, 0, 0, 0]])
  features = derive(testing.raw_example(category, instance))
  assert features == {
      'segment_category': [SKY, GRASS, PERSON, PERSON],
      'segment_isthing': [0, 0, 1, 1],
      'segment_area_fraction': pytest.approx([8 / 20, 6 / 20, 3 / 20,
                                              2 / 20]),
      'num_segments': [4], 'image_height': [4], 'image_width': [5]}


def test_an_unlabelled_example_has_only_its_size(derive):
  features = derive(testing.raw_example(None, None, height=30, width=40))
  assert features['image_height'] == [30] and features['image_width'] == [40]
  assert all(features[name] is None for name in (
      'segment_category', 'segment_isthing', 'segment_area_fraction',
      'num_segments'))


def test_a_corrupt_mask_is_named_with_its_source_id(derive):
  serialized = testing.raw_example(np.ones((4, 4)), np.zeros((4, 4)),
                                   source_id=b'img-77')
  example = tf.train.Example.FromString(serialized)
  example.features.feature['image/panoptic/instance_mask'].bytes_list.value[
      0] = b'not a png'
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'(?s)image/panoptic/instance_mask is not a PNG.*'
                     r'img-77'):
    derive(example.SerializeToString())


def test_record_batch_holds_every_feature():
  batch = panoptic_features.to_record_batch(
      testing.rows_of_categories([[PERSON, SKY]]))
  assert batch.schema.names == list(panoptic_features.FEATURES)
  assert batch.column(0).to_pylist() == [[PERSON, SKY]]


def test_masks_of_different_sizes_are_named_with_the_source_id(derive):
  serialized = testing.raw_example(np.ones((4, 4)), np.zeros((4, 5)),
                                   source_id=b'img-78')
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'(?s)instance_mask size differs.*img-78'):
    derive(serialized)


def test_a_16_bit_instance_mask_keeps_its_ids(derive):
  example = tf.train.Example.FromString(
      testing.raw_example(np.full((2, 2), PERSON), np.zeros((2, 2))))
  instance = np.array([[300, 300], [301, 300]], np.uint16)
  example.features.feature['image/panoptic/instance_mask'].bytes_list.value[
      0] = tf.io.encode_png(tf.constant(instance[..., None])).numpy()
  features = derive(example.SerializeToString())
  assert features['segment_category'] == [PERSON, PERSON]
  assert features['segment_area_fraction'] == pytest.approx([0.75, 0.25])
