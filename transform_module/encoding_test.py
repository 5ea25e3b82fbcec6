"""Tests of the compact encodings of the transform's outputs."""

import fractions
import io
import math

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from transform_module import decode_ops
from schemas import load_categories
from transform_module import encoding
from transform_module import panoptic_targets
from transform_module import preprocessing

_EXTREMES = {
    'segment_map': (-1, encoding.MAX_NUM_SEGMENT_SLOTS - 1),
    'category_mask': (0, encoding.MAX_CATEGORY_ID),
    'instance_mask': (0, 2**16 - 1),
}


def _random_values(key, rng, size=7):
  low, high = _EXTREMES[key]
  values = rng.integers(low, high + 1, size=[size, size])
  values.flat[0], values.flat[-1] = low, high
  return values


@pytest.mark.parametrize('key', sorted(encoding.ROW_DTYPES))
def test_rows_round_trip_exactly(key):
  values = _random_values(key, np.random.default_rng(0))
  rows = encoding.encode_rows(key, tf.constant(values), 7)
  assert rows.shape == (7,) and rows.dtype == tf.string
  decoded = encoding.decode_rows(key, rows)
  assert decoded.shape == values.shape and decoded.dtype == tf.int32
  np.testing.assert_array_equal(decoded.numpy(), values)
  # The numpy encoder of test data writes the same bytes.
  assert list(rows.numpy()) == encoding.encode_numpy(key, values)


@pytest.mark.parametrize('key', sorted(encoding.ROW_DTYPES))
def test_unpadded_map_is_stored_in_its_extent_and_padded_back(key):
  """Rows below the map are empty and rows hold only its width."""
  values = _random_values(key, np.random.default_rng(5))[:4, :5]
  rows = encoding.encode_rows(key, tf.constant(values), 7).numpy()
  item_size = encoding.ROW_DTYPES[key].size
  assert [len(row) for row in rows] == [5 * item_size] * 4 + [0] * 3
  padding = -1 if key == 'segment_map' else 0
  expected = np.full([7, 7], padding)
  expected[:4, :5] = values
  np.testing.assert_array_equal(encoding.decode_rows(key, rows), expected)
  # Whole rows of the padded map (as encode_numpy writes) decode the same.
  np.testing.assert_array_equal(
      encoding.decode_rows(key, encoding.encode_numpy(key, expected)),
      expected)
  void = encoding.decode_rows(key, encoding.void_rows(7))
  np.testing.assert_array_equal(void, np.full([7, 7], padding))


def test_rows_of_the_former_int16_segment_map_are_rejected():
  former = [np.full([7], -1, '<i2').tobytes()] * 7
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='older Transform output contract'):
    encoding.decode_rows('segment_map', former)


def test_decode_rows_of_a_batch():
  rng = np.random.default_rng(1)
  batch = [_random_values('instance_mask', rng) for _ in range(3)]
  rows = tf.stack([encoding.encode_rows('instance_mask', tf.constant(v), 7)
                   for v in batch])
  decoded = encoding.decode_rows('instance_mask', rows)
  assert decoded.shape == (3, 7, 7)
  np.testing.assert_array_equal(decoded.numpy(), np.stack(batch))


def test_encode_rows_inside_a_graph_function():
  """The map's extent is dynamic inside the transform graph."""
  values = _random_values('segment_map', np.random.default_rng(2), size=5)
  encode = tf.function(
      lambda v: encoding.encode_rows('segment_map', v, 6),
      input_signature=[tf.TensorSpec([None, None], tf.int64)])
  expected = np.full([6, 6], -1)
  expected[:5, :3] = values[:, :3]
  np.testing.assert_array_equal(
      encoding.decode_rows('segment_map', encode(tf.constant(values[:, :3]))),
      expected)


def _encoded(array: np.ndarray, image_format: str, **kwargs) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=image_format, **kwargs)
  return buffer.getvalue()


def _sources():
  """Encoded images of the formats the Transform accepts (small, 5×7)."""
  rng = np.random.default_rng(3)
  rgb = rng.integers(0, 256, [5, 7, 3], dtype=np.uint8)
  gray = rgb[:, :, 0]
  rgba = np.concatenate([rgb, gray[:, :, np.newaxis]], axis=-1)
  cmyk = Image.fromarray(rgb).convert('CMYK')
  cmyk_jpeg = io.BytesIO()
  cmyk.save(cmyk_jpeg, format='JPEG')
  gray16 = io.BytesIO()
  Image.fromarray(gray.astype(np.uint16) * 257).save(gray16, format='PNG')
  return {
      'jpeg_rgb': _encoded(rgb, 'JPEG', quality=80),
      'jpeg_gray': _encoded(gray, 'JPEG'),
      'jpeg_cmyk': cmyk_jpeg.getvalue(),
      'png_rgb': _encoded(rgb, 'PNG'),
      'png_rgba': _encoded(rgba, 'PNG'),
      'png_gray16': gray16.getvalue(),
  }


@pytest.mark.parametrize('name', sorted(_sources()))
def test_unresized_image_is_stored_as_its_source(name):
  """The source bytes are stored and decode to the Transform's pixels."""
  source = tf.constant(_sources()[name])
  image = decode_ops.decode_rgb_image(source, tf.constant('id'))
  stored = encoding.encode_image(source, tf.shape(image)[:2], image)
  assert stored.numpy() == source.numpy()
  decoded = encoding.decode_image(stored, 9)
  assert decoded.shape == (9, 9, 3) and decoded.dtype == tf.uint8
  np.testing.assert_array_equal(decoded[:5, :7].numpy(), image.numpy())
  assert not decoded[5:].numpy().any() and not decoded[:, 7:].numpy().any()


def test_resized_image_is_stored_as_raw_pixels():
  rng = np.random.default_rng(4)
  source = tf.constant(_sources()['png_rgb'])
  resized = tf.constant(rng.integers(0, 256, [3, 4, 3], dtype=np.uint8))
  stored = encoding.encode_image(source, tf.constant([5, 7]), resized)
  # About the pixels' size: a serialized TensorProto, no JPEG/PNG.
  assert 3 * 4 * 3 <= len(stored.numpy()) < 3 * 4 * 3 + 32
  assert not decode_ops.is_jpeg_or_png(stored).numpy()
  decoded = encoding.decode_image(tf.stack([stored, stored]), 6)
  assert decoded.shape == (2, 6, 6, 3)
  expected = np.zeros([6, 6, 3], np.uint8)
  expected[:3, :4] = resized.numpy()
  np.testing.assert_array_equal(decoded[1].numpy(), expected)
  padded = np.zeros([6, 6, 3], np.uint8)
  padded[:3, :4] = resized.numpy()
  assert encoding.encode_numpy_image(padded, (3, 4)) == stored.numpy()


def test_image_larger_than_the_output_size_is_an_error():
  source = tf.constant(_sources()['png_rgb'])
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match='larger than the output size'):
    encoding.decode_image(source, 6)


def test_real_coco_images_at_640_are_stored_as_their_jpeg(real_coco_records):
  """COCO images (longer side 640) keep their JPEG: no pixels to gzip."""
  records = [record.numpy() for record in tf.data.TFRecordDataset(
      sorted(str(path) for path in real_coco_records.glob('val-*')))]
  raw = tf.io.parse_example(records, preprocessing.raw_feature_spec())
  for size, is_source in ((640, True), (320, False)):
    outputs = preprocessing.preprocessing_fn(
        raw, {'output_size': size, 'num_segment_slots': 4})
    assert (outputs['image'].numpy().tolist() ==
            raw[preprocessing.IMAGE_KEY].numpy().tolist()) == is_source


def _nearest_and_pad(mask: np.ndarray, size: int) -> np.ndarray:
  """The contract's nearest-neighbour resize to longer side S, zero padding."""
  height, width = mask.shape
  new_h, new_w = (max(1, math.floor(fractions.Fraction(side * size,
                                                       max(height, width))
                                    + fractions.Fraction(1, 2)))
                  for side in (height, width))
  rows = [(2 * y + 1) * height // (2 * new_h) for y in range(new_h)]
  cols = [(2 * x + 1) * width // (2 * new_w) for x in range(new_w)]
  padded = np.zeros([size, size], np.int64)
  padded[:new_h, :new_w] = mask[np.ix_(rows, cols)]
  return padded


@pytest.mark.parametrize('size', [640, 320])
def test_real_coco_label_maps_decode_exactly(real_coco_records, size):
  """The decoded maps are the resized TFMG masks and their slot map."""
  records = [record.numpy() for record in tf.data.TFRecordDataset(
      sorted(str(path) for path in real_coco_records.glob('val-*')))]
  raw = tf.io.parse_example(records, preprocessing.raw_feature_spec())
  outputs = preprocessing.preprocessing_fn(
      raw, {'output_size': size, 'num_segment_slots': 100})
  decoded = encoding.decode_transformed(outputs)
  tables = panoptic_targets.CategoryTables.from_categories(load_categories())
  for index in range(len(records)):
    expected = {
        key: _nearest_and_pad(np.asarray(Image.open(io.BytesIO(
            raw[feature][index].numpy()))).astype(np.int64), size)
        for key, feature in (
            ('category_mask', preprocessing.CATEGORY_MASK_KEY),
            ('instance_mask', preprocessing.INSTANCE_MASK_KEY))}
    # The padding has category 0 (void), hence slot -1 as the Transform pads.
    expected['segment_map'] = panoptic_targets.segment_targets(
        expected['category_mask'], expected['instance_mask'], tables,
        100)['segment_map'].numpy()
    for key, value in expected.items():
      np.testing.assert_array_equal(decoded[key][index].numpy(), value,
                                    err_msg=key)


@pytest.mark.parametrize('height,width,size', [
    (427, 640, 640), (640, 360, 320), (40, 48, 64), (2, 1000, 64),
    (3, 2, 64), (64, 64, 64)])
def test_pixel_valid_is_the_resized_image_extent(height, width, size):
  longer = max(height, width)
  new_h, new_w = (max(1, math.floor(fractions.Fraction(side * size, longer)
                                    + fractions.Fraction(1, 2)))
                  for side in (height, width))
  expected = np.zeros([size, size], np.int32)
  expected[:new_h, :new_w] = 1
  actual = encoding.pixel_valid(tf.constant([height, width], tf.int64), size)
  np.testing.assert_array_equal(actual.numpy(), expected)
  batched = encoding.pixel_valid(
      tf.constant([[height, width], [size, size]], tf.int64), size)
  np.testing.assert_array_equal(batched[0].numpy(), expected)
  assert batched[1].numpy().all()


def test_decode_transformed_adds_pixel_valid_and_passes_others():
  image = np.zeros([6, 6, 3], np.uint8)
  image[:3] = 7
  features = {
      'image': tf.constant([encoding.encode_numpy_image(image, (3, 6))]),
      'original_size': tf.constant([[3, 6]], tf.int64),
      'segment_classes': tf.constant([[4, -1]], tf.int64),
  }
  decoded = encoding.decode_transformed(features, 6)
  np.testing.assert_array_equal(decoded['image'][0].numpy(), image)
  np.testing.assert_array_equal(decoded['pixel_valid'][0].numpy().sum(0),
                                [3] * 6)
  assert decoded['segment_classes'] is features['segment_classes']
  # S comes from the label maps' row count, or must be given.
  rows = tf.constant([encoding.encode_numpy('category_mask', image[..., 0])])
  with_rows = encoding.decode_transformed(
      dict(features, category_mask=rows))
  np.testing.assert_array_equal(with_rows['image'][0].numpy(), image)
  with pytest.raises(ValueError, match='needs output_size'):
    encoding.decode_transformed(features)
  with pytest.raises(ValueError, match='expected output_size = 8'):
    encoding.decode_transformed(dict(features, category_mask=rows), 8)
