"""Tests of the MaskFormer input pipeline and its augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from trainer_module.configs import maskformer as maskformer_cfg
from trainer_module.dataloaders import augmentation
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples

SIZE = 64
SLOTS = 8
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def _data_config(path, is_training, **kwargs):
  return maskformer_cfg.DataConfig(
      input_path=str(path), is_training=is_training, output_size=SIZE,
      num_segment_slots=SLOTS, drop_remainder=is_training, **kwargs)


def _numpy_normalize(image, pixel_valid):
  return np.where(pixel_valid[..., None] > 0, (image - MEAN) / STD, 0.0)


def _slots_from_colours(image):
  """Slot whose colour a pixel has exactly (±0.5), else -2."""
  slots = np.full(image.shape[:2], -2)
  for slot in range(SLOTS):
    exact = np.all(np.abs(image - synthetic_examples.slot_colour(slot)) <= 0.5, -1)
    slots[exact] = slot
  return slots


def _check_alignment(image, segment_map, pixel_valid):
  """Colour-coded pixels must lie in their segment; padding is empty."""
  valid = pixel_valid > 0
  height, width = valid.sum(axis=0).max(), valid.sum(axis=1).max()
  assert valid[:height, :width].all() and valid.sum() == height * width
  assert np.all(segment_map[~valid] == -1)
  assert np.all(image[~valid] == 0.0)
  colour_slots = _slots_from_colours(image)
  exact = valid & (colour_slots >= 0)
  # Bilinear resizing blends colours only along segment borders.
  assert exact.sum() >= 0.6 * valid.sum()
  np.testing.assert_array_equal(colour_slots[exact], segment_map[exact])


def test_eval_dataset_parses_and_normalises(tmp_path):
  path = tmp_path / 'val.gz'
  examples = synthetic_examples.write_transformed_records(path, 3, SIZE, SLOTS)
  dataset = maskformer_input.build_dataset(
      _data_config(path, is_training=False, global_batch_size=2))
  batches = list(dataset)
  assert [images.shape[0] for images, _ in batches] == [2, 1]
  images = np.concatenate([images for images, _ in batches])
  assert batches[0][0].dtype == tf.float32
  assert batches[0][0].shape[1:] == (SIZE, SIZE, 3)
  np.testing.assert_allclose(
      images, [_numpy_normalize(e['image'], e['pixel_valid'])
               for e in examples], rtol=1e-5, atol=1e-5)
  for key in maskformer_input.EVAL_LABEL_KEYS:
    labels = np.concatenate([labels[key] for _, labels in batches])
    assert batches[0][1][key].dtype == tf.int32
    np.testing.assert_array_equal(labels, synthetic_examples.stack(examples, key))


def test_train_dataset_is_static_augmented_and_aligned(tmp_path):
  path = tmp_path / 'train.gz'
  synthetic_examples.write_transformed_records(path, 6, SIZE, SLOTS, seed=3)
  params = _data_config(path, is_training=True, global_batch_size=4,
                        shuffle_buffer_size=4, aug_crop_prob=1.0)
  dataset = maskformer_input.build_dataset(params)
  assert dataset.element_spec[0].shape == (4, SIZE, SIZE, 3)
  assert dataset.element_spec[1]['segment_map'].shape == (4, SIZE, SIZE)
  assert dataset.element_spec[1]['segment_classes'].shape == (4, SLOTS)
  assert set(dataset.element_spec[1]) == set(maskformer_input.TRAIN_LABEL_KEYS)
  for images, labels in dataset.take(3):
    pixel_valid = labels['pixel_valid'].numpy()
    raw = images.numpy() * STD + MEAN
    raw[pixel_valid == 0] = 0.0
    for i in range(images.shape[0]):
      _check_alignment(raw[i], labels['segment_map'][i].numpy(),
                       pixel_valid[i])


def _example(seed):
  example = synthetic_examples.make_transformed_example(
      np.random.default_rng(seed), SIZE, SLOTS)
  return (tf.constant(example['image'], tf.float32),
          tf.constant(example['segment_map'], tf.int32),
          tf.constant(example['pixel_valid']), example)


def test_augment_without_crop_or_rescale_is_identity():
  image, segment_map, pixel_valid, example = _example(0)
  height, width = example['original_size']
  out_image, out_map, out_valid = augmentation.augment(
      image, segment_map, pixel_valid, output_size=SIZE, rand_hflip=False,
      crop_prob=0.0, scale_short_sides=[min(height, width)])
  np.testing.assert_allclose(out_image, example['image'], atol=1e-4)
  np.testing.assert_array_equal(out_map, example['segment_map'])
  np.testing.assert_array_equal(out_valid, example['pixel_valid'])


def test_flip_mirrors_image_and_segment_map_together():
  image, segment_map, _, example = _example(1)
  height, width = example['original_size']
  image, segment_map = image[:height, :width], segment_map[:height, :width]
  outcomes = set()
  for _ in range(30):
    out_image, out_map = augmentation.random_horizontal_flip(image,
                                                             segment_map)
    flipped = not np.array_equal(out_map, segment_map)
    reference = np.fliplr if flipped else (lambda x: x)
    np.testing.assert_array_equal(out_image, reference(image.numpy()))
    np.testing.assert_array_equal(out_map, reference(segment_map.numpy()))
    outcomes.add(flipped)
  assert outcomes == {True, False}


def test_crop_sizes_follow_the_reference_rule():
  image, segment_map, _, example = _example(2)
  height, width = example['original_size']
  image, segment_map = image[:height, :width], segment_map[:height, :width]
  for _ in range(20):
    out_image, out_map = augmentation.resize_and_random_crop(
        image, segment_map, short_sides=[40, 50], crop_size_range=[36, 45])
    crop_h, crop_w = out_map.shape
    assert out_image.shape[:2] == out_map.shape
    # The resized image has its short side at 40 or 50 (>= 36), so each
    # crop side is drawn from [36, 45].
    assert 36 <= crop_h <= 45 and 36 <= crop_w <= 45


@pytest.mark.parametrize('seed', range(4))
def test_augment_output_is_static_and_aligned(seed):
  tf.random.set_seed(seed)
  image, segment_map, pixel_valid, _ = _example(seed)
  out_image, out_map, out_valid = augmentation.augment(
      image, segment_map, pixel_valid, output_size=SIZE, crop_prob=0.5,
      crop_short_sides=[40, 50, 60], crop_size_range=[38, 60],
      scale_short_sides=[48, 56, 64, 72, 80])
  assert out_image.shape == (SIZE, SIZE, 3)
  assert out_map.shape == out_valid.shape == (SIZE, SIZE)
  _check_alignment(out_image.numpy(), out_map.numpy(), out_valid.numpy())


def test_raw_records_are_transformed_on_the_fly(synthetic_sample, tmp_path):
  from transform_module import beam_runner
  raw_pattern = str(synthetic_sample / 'tfrecords' / 'val-*')
  # Also writes the raw metadata into the transform graph, as TFX does.
  beam_runner.run_transform(
      raw_pattern, str(tmp_path),
      custom_config={'output_size': SIZE, 'num_segment_slots': SLOTS})
  expected = list(beam_runner.read_transformed_examples(str(tmp_path))
                  .values())
  params = _data_config(raw_pattern, is_training=False, global_batch_size=1,
                        compression_type='', transform_graph_dir=str(tmp_path))
  parsed = list(maskformer_input.build_dataset(params))
  assert len(parsed) == len(expected)
  for images, labels in parsed:
    segment_map = labels['segment_map'][0].numpy()
    match = [e for e in expected
             if np.array_equal(e['segment_map'], segment_map)]
    assert match, 'no transformed example has this segment map'
    np.testing.assert_allclose(
        images[0], _numpy_normalize(match[0]['image'],
                                    match[0]['pixel_valid']), atol=1e-5)
    for key in maskformer_input.EVAL_LABEL_KEYS:
      np.testing.assert_array_equal(labels[key][0], match[0][key])

  wrong_size = _data_config(raw_pattern, is_training=False,
                            global_batch_size=1, compression_type='',
                            transform_graph_dir=str(tmp_path))
  wrong_size.output_size = 2 * SIZE
  with pytest.raises(ValueError, match='output_size'):
    maskformer_input.build_dataset(wrong_size)


def test_transform_graph_of_the_former_float_contract_is_rejected():
  params = _data_config('unused', is_training=True, global_batch_size=1)
  decoder = maskformer_input.Decoder(params)
  former = maskformer_input.transformed_feature_spec(SIZE, SLOTS, False)
  former['image'] = tf.io.FixedLenFeature([SIZE, SIZE, 3], tf.float32)
  params.transform_graph_dir = '/former/graph'
  with pytest.raises(ValueError, match='older output contract'):
    decoder._check_transform_output(former, params)
