"""Tests of preprocessing_fn run by tf.Transform on Beam (DirectRunner).

Records are built here with TFMG's feature keys; expected outputs come from
PIL decoding/resizing and plain-Python re-implementations of the geometry and
of the segment slots.
"""

import collections
import fractions
import io
import math
from typing import Dict, Optional

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from schemas import load_categories
from transform_module import beam_runner
from transform_module import encoding
from transform_module import preprocessing

_S = 64
_N = 8
_CONFIG = {'output_size': _S, 'num_segment_slots': _N}
_CATEGORIES = load_categories()
_CONTIGUOUS = {c['id']: i for i, c in enumerate(_CATEGORIES)}
_IS_THING = {c['id']: c['isthing'] for c in _CATEGORIES}
_PERSON, _CAR, _DOG = 1, 3, 18
_SKY, _GRASS, _WALL = 187, 193, 199  # Stuff ids (sky-other-merged, ...).
_VANISHING_INSTANCE = 99


# ----------------------------------------------------------------- builders.
def _encode(array: np.ndarray, fmt: str, mode: Optional[str] = None,
            **kwargs) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array, mode).save(buffer, fmt, **kwargs)
  return buffer.getvalue()


def _png(array: np.ndarray) -> bytes:
  return _encode(array, 'PNG')


def _png16(array: np.ndarray) -> bytes:
  return tf.io.encode_png(tf.constant(array[:, :, None],
                                      tf.uint16)).numpy()


def make_example(source_id: str, image: bytes, category_png: bytes,
                 instance_png: bytes, height: int, width: int) -> bytes:
  """A serialized tf.Example with the keys TFMG's panoptic converter writes."""
  def as_bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def as_int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  features = {
      preprocessing.IMAGE_KEY: as_bytes(image),
      preprocessing.SOURCE_ID_KEY: as_bytes(source_id.encode()),
      preprocessing.HEIGHT_KEY: as_int(height),
      preprocessing.WIDTH_KEY: as_int(width),
      preprocessing.CATEGORY_MASK_KEY: as_bytes(category_png),
      preprocessing.INSTANCE_MASK_KEY: as_bytes(instance_png),
      'image/format': as_bytes(b'jpeg'),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=features)).SerializeToString()


def _blocky_labels(height: int, width: int, seed: int, num_things: int,
                   stuff=(_SKY, _GRASS)):
  """Stuff bands plus rectangular thing instances (TFMG-style ids)."""
  rng = np.random.default_rng(seed)
  category = np.zeros([height, width], np.int64)
  instance = np.zeros([height, width], np.int64)
  band = height // (len(stuff) + 1)
  for k, stuff_id in enumerate(stuff):
    category[k * band:(k + 1) * band] = stuff_id
  for k in range(num_things):
    y0, x0 = rng.integers(0, height - 3), rng.integers(0, width - 3)
    y1 = y0 + rng.integers(3, max(4, height // 2))
    x1 = x0 + rng.integers(3, max(4, width // 2))
    category[y0:y1, x0:x1] = (_PERSON, _CAR, _DOG)[k % 3]
    instance[y0:y1, x0:x1] = len(stuff) + k + 1
  return category, instance


def _random_rgb(height, width, seed):
  rng = np.random.default_rng(seed)
  # Smooth content so JPEG round trips and resizing stay close to the source.
  small = rng.integers(0, 256, [height // 4 + 1, width // 4 + 1, 3], np.uint8)
  return np.asarray(Image.fromarray(small).resize((width, height)))


class Case:
  """One raw record plus the references needed to check its outputs."""

  def __init__(self, name: str, image_rgb: np.ndarray, image_bytes: bytes,
               category: np.ndarray, instance: np.ndarray,
               category_png: Optional[bytes] = None,
               instance_png: Optional[bytes] = None,
               decode_tolerance: float = 0.0):
    self.name = name
    self.image_rgb = image_rgb
    self.category = category
    self.instance = instance
    self.decode_tolerance = decode_tolerance
    height, width = category.shape
    self.serialized = make_example(
        name, image_bytes,
        category_png or _png(category.astype(np.uint8)),
        instance_png or _png(instance.astype(np.uint8)), height, width)


def _good_cases():
  """Valid records covering the image formats and label edge cases."""
  cases = []
  rgb = _random_rgb(40, 64, 0)
  cat, inst = _blocky_labels(40, 64, 0, 4)
  cases.append(Case('png_rgb_longer_side_is_s', rgb, _png(rgb), cat, inst))

  rgb = _random_rgb(96, 80, 1)
  cat, inst = _blocky_labels(96, 80, 1, 5)
  # A one-pixel car at (1, 1): nearest sampling 96x80 -> 64x53 skips row 1 and
  # column 1, so this segment vanishes and must not take a slot.
  cat[1, 1], inst[1, 1] = _CAR, _VANISHING_INSTANCE
  jpeg = _encode(rgb, 'JPEG', quality=95)
  cases.append(Case('jpeg_rgb_downscaled',
                    np.asarray(Image.open(io.BytesIO(jpeg)).convert('RGB')),
                    jpeg, cat, inst))

  gray = _random_rgb(48, 32, 2)[:, :, 0]
  jpeg = _encode(gray, 'JPEG')
  decoded_gray = np.asarray(Image.open(io.BytesIO(jpeg)))
  cat, inst = _blocky_labels(48, 32, 2, 2)
  cases.append(Case('jpeg_gray', np.stack([decoded_gray] * 3, -1), jpeg,
                    cat, inst))

  rgba = np.concatenate([_random_rgb(30, 50, 3),
                         np.full([30, 50, 1], 77, np.uint8)], -1)
  cat, inst = _blocky_labels(30, 50, 3, 3)
  cases.append(Case('png_rgba', rgba[:, :, :3], _encode(rgba, 'PNG', 'RGBA'),
                    cat, inst))

  cmyk = np.concatenate([_random_rgb(36, 44, 4),
                         _random_rgb(36, 44, 5)[:, :, :1]], -1)
  jpeg = _encode(cmyk, 'JPEG', 'CMYK', quality=95)
  # Adobe CMYK JPEGs store inverted values: RGB = (255-C)(255-K)/255 on the
  # stored (already inverted by PIL) C, K.
  stored = np.asarray(Image.open(io.BytesIO(jpeg))).astype(np.float64)
  cmyk_rgb = (255 - stored[:, :, :3]) * (255 - stored[:, :, 3:]) / 255
  cat, inst = _blocky_labels(36, 44, 4, 2)
  # Tolerance 1: the decoder converts CMYK with integer arithmetic.
  cases.append(Case('jpeg_cmyk', cmyk_rgb, jpeg, cat, inst,
                    decode_tolerance=1.0))

  # 16-bit PNG masks: instance ids above 255 must survive unchanged.
  rgb = _random_rgb(20, 10, 6)
  cat, inst = _blocky_labels(20, 10, 6, 3)
  inst = np.where(inst > 0, inst * 300, 0)
  cases.append(Case('mask_16bit_upscaled', rgb, _png(rgb), cat, inst,
                    category_png=_png16(cat), instance_png=_png16(inst)))

  rgb = _random_rgb(24, 24, 7)
  void = np.zeros([24, 24], np.int64)
  cases.append(Case('no_segments', rgb, _png(rgb), void,
                    np.full([24, 24], 3, np.int64)))

  # 12 thing instances with distinct areas (N = 8 keeps the 8 largest).
  rgb = _random_rgb(64, 48, 8)
  cat = np.full([64, 48], _WALL, np.int64)
  inst = np.zeros([64, 48], np.int64)
  for k in range(12):
    cat[5 * k:5 * k + 4, :40 - 2 * k] = _PERSON if k % 2 else _DOG
    inst[5 * k:5 * k + 4, :40 - 2 * k] = k + 1
  cases.append(Case('more_segments_than_slots', rgb, _png(rgb), cat, inst))
  return cases


_GOOD_CASES = {case.name: case for case in _good_cases()}


# --------------------------------------------------------------- references.
def _scaled_size(height, width, size=_S):
  longer = max(height, width)
  return tuple(max(1, math.floor(fractions.Fraction(side * size, longer)
                                 + fractions.Fraction(1, 2)))
               for side in (height, width))


def _resize_nearest(mask, new_size):
  rows = [math.floor((y + 0.5) * mask.shape[0] / new_size[0])
          for y in range(new_size[0])]
  cols = [math.floor((x + 0.5) * mask.shape[1] / new_size[1])
          for x in range(new_size[1])]
  return mask[np.ix_(rows, cols)]


def _pad(values, fill=0):
  out = np.full((_S, _S) + values.shape[2:], fill, values.dtype)
  out[:values.shape[0], :values.shape[1]] = values
  return out


def reference_outputs(case: Case) -> Dict[str, np.ndarray]:
  """Expected label/geometry outputs of one case, in plain Python."""
  new_size = _scaled_size(*case.category.shape)
  category = _pad(_resize_nearest(case.category, new_size))
  instance = _pad(_resize_nearest(case.instance, new_size))
  areas = collections.Counter(
      (int(c), int(i)) for c, i in zip(category.ravel(), instance.ravel())
      if c != 0)
  ordered = sorted(areas, key=lambda k: (-areas[k], _CONTIGUOUS[k[0]], k[1]))
  slot = {key: j for j, key in enumerate(ordered[:_N])}
  segment_map = np.array(
      [[slot.get((int(c), int(i)), -1) for c, i in zip(crow, irow)]
       for crow, irow in zip(category, instance)])
  classes = [_CONTIGUOUS[c] for c, _ in ordered[:_N]]
  is_thing = [_IS_THING[c] for c, _ in ordered[:_N]]
  pad = [-1] * (_N - len(classes))
  return {
      'category_mask': category,
      'instance_mask': instance,
      'segment_map': segment_map,
      'segment_classes': np.array(classes + pad),
      'segment_is_thing': np.array(is_thing + [0] * len(pad)),
      'num_segments': np.array(len(classes)),
      'num_dropped_segments': np.array(len(ordered) - len(classes)),
      'pixel_valid': _pad(np.ones(new_size, np.int64)),
      'original_size': np.array(case.category.shape),
      'has_labels': np.array(1),
  }


# ------------------------------------------------------------------ running.
def _write_records(path: str, serialized_examples) -> str:
  with tf.io.TFRecordWriter(path) as writer:
    for serialized in serialized_examples:
      writer.write(serialized)
  return path


@pytest.fixture(scope='module')
def transformed_good_cases(tmp_path_factory):
  """Runs the Beam transform once over all good cases."""
  work_dir = tmp_path_factory.mktemp('transform_good')
  raw = _write_records(str(work_dir / 'raw.tfrecord'),
                       [case.serialized for case in _GOOD_CASES.values()])
  output_dir = str(work_dir / 'output')
  beam_runner.run_transform(raw, output_dir, _CONFIG)
  return output_dir, beam_runner.read_transformed_examples(output_dir)


@pytest.fixture(scope='module')
def transform_output(transformed_good_cases):
  """The transform graph written by the good-case run."""
  return tft.TFTransformOutput(transformed_good_cases[0])


# -------------------------------------------------------------------- tests.
def test_output_schema_matches_contract(transformed_good_cases):
  output_dir, _ = transformed_good_cases
  spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
  expected = {
      'image': ([], tf.string),
      'segment_map': ([_S], tf.string),
      'segment_classes': ([_N], tf.int64),
      'segment_is_thing': ([_N], tf.int64),
      'num_segments': ([], tf.int64),
      'num_dropped_segments': ([], tf.int64),
      'category_mask': ([_S], tf.string),
      'instance_mask': ([_S], tf.string),
      'source_id': ([], tf.string),
      'original_size': ([2], tf.int64),
      'has_labels': ([], tf.int64),
  }
  assert {key: (list(feature.shape), feature.dtype)
          for key, feature in spec.items()} == expected
  assert all(isinstance(feature, tf.io.FixedLenFeature)
             for feature in spec.values())


@pytest.mark.parametrize('name', sorted(_GOOD_CASES))
def test_labels_and_geometry_match_reference(transformed_good_cases, name):
  _, outputs = transformed_good_cases
  actual = outputs[name]
  for key, expected in reference_outputs(_GOOD_CASES[name]).items():
    np.testing.assert_array_equal(actual[key], expected, err_msg=key)


@pytest.mark.parametrize('name', sorted(_GOOD_CASES))
def test_image_matches_pil_reference(transformed_good_cases, name):
  _, outputs = transformed_good_cases
  case = _GOOD_CASES[name]
  height, width = case.category.shape
  new_height, new_width = _scaled_size(height, width)
  reference = np.clip(np.round(case.image_rgb), 0, 255).astype(np.uint8)
  tolerance = case.decode_tolerance
  if (new_height, new_width) != (height, width):
    reference = np.asarray(Image.fromarray(reference).resize(
        (new_width, new_height), Image.BILINEAR))
    tolerance += 1.0  # PIL's fixed-point filter weights; both round.
  image = outputs[name]['image']
  assert image.dtype == np.uint8
  np.testing.assert_allclose(image[:new_height, :new_width],
                             reference.astype(np.float32),
                             atol=tolerance)
  assert not image[new_height:].any() and not image[:, new_width:].any()


def test_more_segments_than_slots_keeps_largest(transformed_good_cases):
  _, outputs = transformed_good_cases
  actual = outputs['more_segments_than_slots']
  assert actual['num_segments'] == _N
  assert actual['num_dropped_segments'] == 13 - _N  # 12 things + the wall.
  assert actual['segment_classes'][0] == _CONTIGUOUS[_WALL]


def test_segment_vanishing_in_resize_is_dropped(transformed_good_cases):
  _, outputs = transformed_good_cases
  actual = outputs['jpeg_rgb_downscaled']
  assert _VANISHING_INSTANCE not in actual['instance_mask']
  assert actual['num_dropped_segments'] == 0
  assert actual['num_segments'] == len(
      set(zip(actual['category_mask'][actual['category_mask'] > 0],
              actual['instance_mask'][actual['category_mask'] > 0])))


def test_mask_16bit_keeps_large_instance_ids(transformed_good_cases):
  _, outputs = transformed_good_cases
  instance_ids = set(np.unique(outputs['mask_16bit_upscaled']['instance_mask']))
  assert instance_ids & {300 * k for k in range(3, 6)}


def test_serving_transform_without_label_features(transformed_good_cases,
                                                  transform_output):
  _, outputs = transformed_good_cases
  names = sorted(_GOOD_CASES)
  raw = tf.io.parse_example(
      [_GOOD_CASES[name].serialized for name in names],
      {key: preprocessing.raw_feature_spec()[key]
       for key in preprocessing.IMAGE_FEATURE_KEYS})
  served = transform_output.transform_raw_features(
      raw, drop_unused_features=True)
  assert set(served) == set(preprocessing.IMAGE_OUTPUT_KEYS)
  served = encoding.decode_transformed(served, _S)
  for index, name in enumerate(names):
    for key in preprocessing.IMAGE_OUTPUT_KEYS + ('pixel_valid',):
      np.testing.assert_array_equal(served[key][index].numpy(),
                                    outputs[name][key], err_msg=key)


# ------------------------------------------------------------- bad records.
def _bad_records():
  """(source_id, serialized example, expected message fragment)."""
  rgb = _random_rgb(16, 20, 9)
  cat, inst = _blocky_labels(16, 20, 9, 2)
  cat_png, inst_png = _png(cat.astype(np.uint8)), _png(inst.astype(np.uint8))
  jpeg, png = _encode(rgb, 'JPEG'), _png(rgb)
  bad_cat = cat.copy()
  bad_cat[0, 0] = 12  # A COCO detection id gap, not a panoptic category.
  big_cat = cat.copy()
  big_cat[0, 0] = 300
  records = [
      ('empty_image', b'', cat_png, inst_png, 'image/encoded is empty'),
      ('junk_image', b'not an image at all', cat_png, inst_png,
       'neither a JPEG nor a PNG'),
      ('truncated_jpeg', jpeg[:len(jpeg) // 2], cat_png, inst_png,
       'image/encoded could not be decoded'),
      ('truncated_png', png[:60], cat_png, inst_png,
       'image/encoded could not be decoded'),
      ('mask_size_differs', jpeg, _png(cat[:15].astype(np.uint8)),
       _png(inst[:15].astype(np.uint8)),
       'category_mask size differs from the image size'),
      ('unknown_category', png, _png(bad_cat.astype(np.uint8)), inst_png,
       'not COCO panoptic categories'),
      ('unknown_category_16bit', png, _png16(big_cat), inst_png,
       'not COCO panoptic categories'),
      ('rgb_mask', png, _png(np.stack([cat.astype(np.uint8)] * 3, -1)),
       inst_png, 'single-channel 8- or 16-bit grayscale PNG'),
      ('truncated_mask', png, cat_png, inst_png[:40],
       'instance_mask could not be decoded'),
      ('jpeg_mask', png, _encode(cat.astype(np.uint8), 'JPEG'), inst_png,
       'category_mask is not a PNG'),
      ('one_mask_missing', png, cat_png, b'', 'exactly one of'),
  ]
  result = [(sid, make_example(sid, image, c, i, 16, 20), message)
            for sid, image, c, i, message in records]
  result.append(('declared_size_differs',
                 make_example('declared_size_differs', png, cat_png, inst_png,
                              20, 16),
                 'differ from the decoded image size'))
  return result


_BAD_RECORDS = _bad_records()


@pytest.mark.parametrize('source_id,serialized,message', _BAD_RECORDS,
                         ids=[record[0] for record in _BAD_RECORDS])
def test_bad_record_fails_naming_source_id(transform_output, source_id,
                                           serialized, message):
  raw = tf.io.parse_example([serialized], preprocessing.raw_feature_spec())
  with pytest.raises(tf.errors.InvalidArgumentError) as error:
    transform_output.transform_raw_features(raw)
  assert message in str(error.value)
  assert f'[{source_id}]' in str(error.value)


def test_bad_record_error_reaches_beam_exception(tmp_path):
  serialized = {sid: record for sid, record, _ in _BAD_RECORDS}
  good = _GOOD_CASES['png_rgb_longer_side_is_s'].serialized
  raw = _write_records(str(tmp_path / 'raw.tfrecord'),
                       [good, serialized['truncated_jpeg']])
  with pytest.raises(Exception) as error:
    beam_runner.run_transform(raw, str(tmp_path / 'output'), _CONFIG)
  assert 'image/encoded could not be decoded' in str(error.value)
  assert '[truncated_jpeg]' in str(error.value)


def test_transform_config_rejects_non_positive_sizes():
  assert preprocessing.TransformConfig.from_custom_config(None) == (
      preprocessing.TransformConfig(output_size=640, num_segment_slots=100))
  with pytest.raises(ValueError, match='positive'):
    preprocessing.TransformConfig.from_custom_config({'output_size': 0})
  with pytest.raises(ValueError, match='uint8'):
    preprocessing.TransformConfig.from_custom_config(
        {'num_segment_slots': 256})
  assert preprocessing.TransformConfig.from_custom_config(
      {'num_segment_slots': 255}).num_segment_slots == 255
