"""Tests of the scale augmentation and the evaluation resize."""

import numpy as np
import pytest
import tensorflow as tf

from official.core import exp_factory
from trainer_module import registry_imports
from trainer_module.configs import maskformer as maskformer_cfg
from trainer_module.dataloaders import augmentation
from trainer_module.dataloaders import maskformer_input
from trainer_module.dataloaders import synthetic_examples

SIZE = 64
SLOTS = 8


def _padded_example(height, width, seed=0):
  """A random S×S example whose valid image is height×width."""
  rng = np.random.default_rng(seed)
  segment_map = np.full([SIZE, SIZE], -1, np.int32)
  segment_map[:height, :width] = rng.integers(0, 3, [height, width])
  segment_map[:height // 2, :width] = 3  # A large segment.
  image = np.zeros([SIZE, SIZE, 3], np.float32)
  image[:height, :width] = rng.uniform(0, 255, [height, width, 3])
  pixel_valid = np.zeros([SIZE, SIZE], np.int32)
  pixel_valid[:height, :width] = 1
  return (tf.constant(image), tf.constant(segment_map),
          tf.constant(pixel_valid))


def _valid_size(pixel_valid):
  pixel_valid = np.asarray(pixel_valid)
  return (int(pixel_valid.max(axis=1).sum()),
          int(pixel_valid.max(axis=0).sum()))


def _nearest(label_map, size):
  """Pixel-centre nearest-neighbour resize (numpy, float32 as TF)."""

  def source(out_size, in_size):
    scale = np.float32(in_size) / np.float32(out_size)
    index = np.floor((np.arange(out_size, dtype=np.float32) + 0.5) * scale)
    return np.minimum(index.astype(int), in_size - 1)

  height, width = label_map.shape
  return label_map[source(size[0], height)][:, source(size[1], width)]


def test_settings_of_the_reference_scale_experiment():
  config = exp_factory.get_exp_config('maskformer_coco_panoptic_1344')
  train = augmentation.train_resize_settings(config.task.train_data)
  assert train['output_size'] == 1344
  assert train['scale_short_sides'] == list(range(480, 801, 32))
  assert train['max_long_side'] == 1333
  assert train['crop_short_sides'] == [400, 500, 600]
  assert train['crop_size_range'] == [384, 600]
  assert train['crop_prob'] == 0.5 and train['rand_hflip']
  evaluation = augmentation.eval_resize_settings(
      config.task.validation_data)
  assert evaluation == {'output_size': 1344, 'short_side': 800,
                        'max_long_side': 1333}
  assert config.task.model.input_size == [1344, 1344, 3]


def test_settings_of_the_640_experiment_are_the_reference_scaled():
  config = exp_factory.get_exp_config('maskformer_coco_panoptic')
  train = augmentation.train_resize_settings(config.task.train_data)
  scale = 640 / 1067
  assert train['scale_short_sides'] == [
      round(side * scale) for side in range(480, 801, 32)]
  assert train['scale_short_sides'][-1] == 480
  assert train['max_long_side'] == round(1333 * scale)  # Then capped at S.
  # Evaluation keeps the Transform's size (as serving), which for a 4:3
  # image is the reference's test size scaled: 640×480.
  for name in ('maskformer_coco_panoptic', 'maskformer_tiny'):
    config = exp_factory.get_exp_config(name)
    assert augmentation.eval_resize_settings(
        config.task.validation_data) is None


def test_no_crop_branch_rescales_a_4_to_3_image():
  # A 4:3 image stored at long side S, as the Transform writes it; the
  # 640 experiment's short sides scaled to S = 64: 29..48, long cap 64.
  image, segment_map, pixel_valid = _padded_example(48, 64)
  short_sides = [29, 31, 33, 35, 37, 39, 41, 43, 44, 46, 48]
  sizes = set()
  tf.random.set_seed(0)
  for _ in range(12):
    _, out_map, out_valid = augmentation.augment(
        image, segment_map, pixel_valid, output_size=SIZE, rand_hflip=False,
        crop_prob=0.0, scale_short_sides=short_sides, max_long_side=80)
    height, width = _valid_size(out_valid)
    assert height in short_sides
    assert width == int(np.floor(height * 4 / 3 + 0.5))
    sizes.add(height)
    # The segment map is the nearest-neighbour resize of the input's.
    np.testing.assert_array_equal(
        out_map.numpy()[:height, :width],
        _nearest(segment_map.numpy()[:48, :64], (height, width)))
    assert np.all(out_map.numpy()[height:] == -1)
  assert len(sizes) >= 4


def test_long_side_cap():
  image, segment_map, pixel_valid = _padded_example(32, 64)
  _, _, out_valid = augmentation.augment(
      image, segment_map, pixel_valid, output_size=SIZE, rand_hflip=False,
      crop_prob=0.0, scale_short_sides=[40], max_long_side=60)
  # Short side 40 would make the long side 80: capped at 60.
  assert _valid_size(out_valid) == (30, 60)
  _, _, out_valid = augmentation.augment(
      image, segment_map, pixel_valid, output_size=SIZE, rand_hflip=False,
      crop_prob=0.0, scale_short_sides=[40], max_long_side=None)
  assert _valid_size(out_valid) == (32, 64)  # Capped at S.


def test_resize_for_eval_sets_the_short_side_and_keeps_maps_aligned():
  image, segment_map, pixel_valid = _padded_example(64, 48, seed=1)
  category = segment_map + 10
  out_image, out_maps, out_valid = augmentation.resize_for_eval(
      image, {'segment_map': segment_map, 'category_mask': category},
      pixel_valid, output_size=SIZE, short_side=30, max_long_side=60)
  assert out_image.shape == (SIZE, SIZE, 3)
  assert _valid_size(out_valid) == (40, 30)
  for key, source in (('segment_map', segment_map),
                      ('category_mask', category)):
    out = out_maps[key].numpy()
    assert out.shape == (SIZE, SIZE)
    np.testing.assert_array_equal(
        out[:40, :30], _nearest(source.numpy()[:64, :48], (40, 30)))
  assert np.all(out_maps['segment_map'].numpy()[40:] == -1)
  assert np.all(out_maps['category_mask'].numpy()[40:] == 0)
  assert np.all(out_image.numpy()[40:] == 0.0)
  # Antialiased downscaling: the mean colour is kept.
  np.testing.assert_allclose(out_image.numpy()[:40, :30].mean(),
                             image.numpy()[:64, :48].mean(), rtol=0.02)


def test_eval_dataset_is_resized_to_the_test_size(tmp_path):
  path = tmp_path / 'val.gz'
  examples = synthetic_examples.write_transformed_records(path, 2, SIZE, SLOTS)
  params = maskformer_cfg.DataConfig(
      input_path=str(path), is_training=False, output_size=SIZE,
      num_segment_slots=SLOTS, global_batch_size=2, drop_remainder=False,
      eval_short_side=30, aug_max_long_side=1333, aug_reference_size=SIZE)
  images, labels = next(iter(maskformer_input.build_dataset(params)))
  assert images.shape == (2, SIZE, SIZE, 3)
  for i, example in enumerate(examples):
    height, width = example['original_size']
    scale = min(30 / min(height, width), SIZE / max(height, width))
    expected = (int(np.floor(height * scale + 0.5)),
                int(np.floor(width * scale + 0.5)))
    assert _valid_size(labels['pixel_valid'][i]) == expected
    for key in ('segment_map', 'category_mask', 'instance_mask'):
      np.testing.assert_array_equal(
          labels[key][i].numpy()[:expected[0], :expected[1]],
          _nearest(example[key][:height, :width], expected))
    assert np.all(images[i].numpy()[expected[0]:] == 0.0)


@pytest.mark.parametrize('field,value', [
    ('aug_scale_short_side_step', 0), ('aug_max_long_side', 0),
    ('eval_short_side', -1)])
def test_invalid_scale_settings_are_rejected(field, value):
  config = exp_factory.get_exp_config('maskformer_tiny')
  config.override({'task': {'validation_data': {field: value}}})
  with pytest.raises(ValueError, match=f'validation_data.{field}'):
    maskformer_cfg.validate_task_config(config.task)
