"""Tests of the SavedModel export and its serving signatures."""

import io
import json
import os
import pathlib
import subprocess
import sys
from typing import Dict, List

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from official.core import exp_factory
from schemas import load_categories
from trainer_module import export
from trainer_module import registry_imports
from trainer_module.modeling import factory
from trainer_module.ops import coco_panoptic_output
from trainer_module.ops.panoptic_inference import panoptic_inference
# The transformed synthetic sample (S = 64, N = 8): conftest.py's
# `transformed_sample`.
from trainer_module.testing import NUM_SEGMENT_SLOTS
from trainer_module.testing import OUTPUT_SIZE
from transform_module import beam_runner
from transform_module import encoding

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
# Reference (detectron2) pixel normalisation.
PIXEL_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
PIXEL_STD = np.array([58.395, 57.12, 57.375], np.float32)
PROJECT_PACKAGES = ('trainer_module', 'transform_module', 'tfx_pipeline',
                    'schemas', 'runners')
SEGMENT_KEYS = ('segment_category', 'segment_score', 'segment_is_thing',
                'segment_valid')
MAP_KEYS = ('category_mask', 'instance_mask', 'pixel_valid')


def _example(features: Dict[str, object]) -> bytes:
  feature = {}
  for key, value in features.items():
    if isinstance(value, bytes):
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[value]))
    else:
      feature[key] = tf.train.Feature(int64_list=tf.train.Int64List(
          value=[value]))
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def _image_features(serialized: bytes) -> Dict[str, object]:
  features = tf.train.Example.FromString(serialized).features.feature
  return {key: features[key].bytes_list.value[0]
          for key in ('image/encoded', 'image/source_id')}


def _non_square_png() -> bytes:
  """A 37×64 RGB PNG: its transformed image has 27 rows of padding."""
  rng = np.random.default_rng(3)
  buffer = io.BytesIO()
  Image.fromarray(rng.integers(0, 256, (37, 64, 3), dtype=np.uint8)).save(
      buffer, format='PNG')
  return buffer.getvalue()


@pytest.fixture(scope='module')
def labelled_records(transformed_sample) -> List[bytes]:
  """The raw TFMG records of the synthetic sample (with labels)."""
  files = sorted(tf.io.gfile.glob(transformed_sample['raw']))
  return [record.numpy() for record in tf.data.TFRecordDataset(files)][:4]


@pytest.fixture(scope='module')
def serving_examples(labelled_records) -> List[bytes]:
  """Image-only examples: the sample's images and a non-square PNG."""
  examples = [_example(_image_features(record))
              for record in labelled_records]
  examples.append(_example({'image/encoded': _non_square_png(),
                            'image/source_id': b'non_square'}))
  return examples


@pytest.fixture(scope='module')
def exported(transformed_sample, tmp_path_factory):
  """An untrained `maskformer_tiny` at S = 64, exported with thresholds 0 (so
  that random weights still give segments); returns (model, dir)."""
  params = exp_factory.get_exp_config('maskformer_tiny')
  params.override({
      'task': {
          'model': {'input_size': [OUTPUT_SIZE, OUTPUT_SIZE, 3]},
          'train_data': {'output_size': OUTPUT_SIZE,
                         'num_segment_slots': NUM_SEGMENT_SLOTS},
          'validation_data': {'output_size': OUTPUT_SIZE,
                              'num_segment_slots': NUM_SEGMENT_SLOTS},
          'evaluation': {'object_mask_threshold': 0.0,
                         'overlap_threshold': 0.0},
      }})
  work_dir = tmp_path_factory.mktemp('export')
  tf.random.set_seed(1)
  model = factory.build_maskformer_model(params.task.model)
  model(tf.zeros([1, OUTPUT_SIZE, OUTPUT_SIZE, 3]), training=False)
  checkpoint = tf.train.Checkpoint(model=model).write(
      str(work_dir / 'ckpt' / 'ckpt-1'))
  export_dir = export.export_saved_model(
      params, checkpoint, transformed_sample['graph'],
      str(work_dir / 'saved_model'))
  return model, export_dir


@pytest.fixture(scope='module')
def loaded(exported):
  return tf.saved_model.load(exported[1])


def _numpy(outputs: Dict[str, tf.Tensor]) -> Dict[str, np.ndarray]:
  return {key: value.numpy() for key, value in outputs.items()}


def _reference_outputs(model, transform_dir: str,
                       examples: List[bytes]) -> Dict[str, np.ndarray]:
  """Eager pipeline: tf.Transform's own apply, numpy normalisation, the
  in-memory model and panoptic inference at S (thresholds 0)."""
  import tensorflow_transform as tft
  raw = tf.io.parse_example(
      examples, {key: tf.io.FixedLenFeature([], tf.string)
                 for key in ('image/encoded', 'image/source_id')})
  transformed = _numpy(encoding.decode_transformed(
      tft.TFTransformOutput(transform_dir).transform_raw_features(
          raw, drop_unused_features=True), OUTPUT_SIZE))
  valid = transformed['pixel_valid'] > 0
  images = np.where(valid[..., None],
                    (transformed['image'] - PIXEL_MEAN) / PIXEL_STD, 0.0)
  outputs = model(tf.constant(images, tf.float32), training=False)
  mask_logits = tf.image.resize(outputs['mask_logits'],
                                [OUTPUT_SIZE, OUTPUT_SIZE], method='bilinear')
  categories = load_categories()
  result = _numpy(panoptic_inference(
      outputs['class_logits'], mask_logits,
      thing_class_mask=[c['isthing'] == 1 for c in categories],
      category_ids=[c['id'] for c in categories],
      object_mask_threshold=0.0, overlap_threshold=0.0,
      pixel_valid=transformed['pixel_valid']))
  result['pixel_valid'] = transformed['pixel_valid']
  result['original_size'] = transformed['original_size']
  return result


def test_serving_examples_outputs_have_static_shapes_and_dtypes(
    loaded, serving_examples):
  outputs = loaded.signatures[export.SERVING_EXAMPLES](
      examples=tf.constant(serving_examples))
  batch = len(serving_examples)
  num_queries = 20  # maskformer_tiny
  expected = {
      'category_mask': (tf.int32, [batch, OUTPUT_SIZE, OUTPUT_SIZE]),
      'instance_mask': (tf.int32, [batch, OUTPUT_SIZE, OUTPUT_SIZE]),
      'pixel_valid': (tf.int32, [batch, OUTPUT_SIZE, OUTPUT_SIZE]),
      'segment_category': (tf.int32, [batch, num_queries]),
      'segment_score': (tf.float32, [batch, num_queries]),
      'segment_is_thing': (tf.bool, [batch, num_queries]),
      'segment_valid': (tf.bool, [batch, num_queries]),
      'original_size': (tf.int32, [batch, 2]),
      'source_id': (tf.string, [batch]),
  }
  assert {key: (value.dtype, value.shape.as_list())
          for key, value in outputs.items()} == expected
  signature = loaded.signatures[export.SERVING_EXAMPLES]
  for key, (dtype, shape) in expected.items():
    assert signature.structured_outputs[key].dtype == dtype
    assert signature.structured_outputs[key].shape.as_list() == [None] + (
        shape[1:])


def test_serving_examples_matches_an_eager_reference(exported, loaded,
                                                     serving_examples,
                                                     transformed_sample):
  model, _ = exported
  served = _numpy(loaded.signatures[export.SERVING_EXAMPLES](
      examples=tf.constant(serving_examples)))
  reference = _reference_outputs(model, transformed_sample['graph'],
                                 serving_examples)
  assert served['segment_valid'].any()
  for key in MAP_KEYS + ('segment_category', 'segment_is_thing',
                         'segment_valid', 'original_size'):
    agreement = np.mean(served[key] == reference[key])
    assert agreement >= 0.995, key
  np.testing.assert_allclose(served['segment_score'],
                             reference['segment_score'], atol=1e-4)

  # The non-square image: its decoded size, and padding is void.
  decoded = Image.open(io.BytesIO(_non_square_png()))
  assert served['original_size'][-1].tolist() == [decoded.height,
                                                  decoded.width]
  assert served['source_id'][-1] == b'non_square'
  padding = served['pixel_valid'][-1] == 0
  assert padding[37:].all() and not padding[:37].any()
  assert (served['category_mask'][-1][padding] == 0).all()
  assert (served['instance_mask'][-1][padding] == 0).all()


def test_serving_default_is_the_coco_form_of_serving_examples(
    loaded, serving_examples):
  """One input (encoded images) as TF Serving's row format fills it; the
  COCO panoptic result of the same model outputs as `serving_examples`."""
  signature = loaded.signatures[export.SERVING_DEFAULT]
  inputs = signature.structured_input_signature[1]
  assert {key: (spec.dtype, spec.shape.as_list())
          for key, spec in inputs.items()} == {
              export.IMAGES_INPUT: (tf.string, [None])}
  images = [_image_features(example)['image/encoded']
            for example in serving_examples]
  served = _numpy(signature(images=tf.constant(images)))
  from_examples = loaded.signatures[export.SERVING_EXAMPLES](
      examples=tf.constant(serving_examples))
  expected = _numpy(coco_panoptic_output.coco_panoptic_outputs(
      from_examples, max(c['id'] for c in load_categories()) + 1))
  batch, num_queries = len(images), 20  # maskformer_tiny
  assert {key: value.shape for key, value in served.items()} == {
      'panoptic_png_bytes': (batch,), 'num_segments': (batch,),
      **{key: (batch, num_queries)
         for key in coco_panoptic_output.SEGMENT_OUTPUTS}}
  for key, value in expected.items():
    np.testing.assert_array_equal(served[key], value, err_msg=key)
  assert served['num_segments'].min() > 0
  # The non-square image's PNG has its original size.
  png = Image.open(io.BytesIO(served['panoptic_png_bytes'][-1]))
  assert png.size == Image.open(io.BytesIO(_non_square_png())).size


def test_label_features_are_not_needed_and_do_not_change_predictions(
    loaded, labelled_records, serving_examples):
  with_labels = _numpy(loaded.signatures[export.SERVING_EXAMPLES](
      examples=tf.constant(labelled_records)))
  without_labels = _numpy(loaded.signatures[export.SERVING_EXAMPLES](
      examples=tf.constant(serving_examples[:len(labelled_records)])))
  for key, value in with_labels.items():
    np.testing.assert_array_equal(without_labels[key], value, err_msg=key)


def test_transform_labels_match_the_materialized_transform(
    loaded, labelled_records, transformed_sample):
  labels = _numpy(loaded.signatures[export.TRANSFORM_LABELS](
      examples=tf.constant(labelled_records)))
  assert set(labels) == {'category_mask', 'instance_mask'}
  materialized = beam_runner.read_transformed_examples(
      transformed_sample['graph'])
  for index, record in enumerate(labelled_records):
    source_id = _image_features(record)['image/source_id'].decode()
    for key in ('category_mask', 'instance_mask'):
      assert labels[key].dtype == np.int32
      np.testing.assert_array_equal(labels[key][index],
                                    materialized[source_id][key])


_ISOLATED_CHILD = r'''
import importlib.util, json, sys
# Forget the editable install of this project (its .pth finder) and the
# repository itself: only the virtualenv's third-party packages stay.
def from_project(thing):
  return getattr(thing, '__module__', '').startswith('__editable__')
sys.meta_path[:] = [f for f in sys.meta_path if not from_project(f)]
sys.path_hooks[:] = [h for h in sys.path_hooks if not from_project(h)]
repo_root = sys.argv[1]
sys.path[:] = [entry for entry in sys.path if '__editable__' not in entry
               and entry.rstrip('/') != repo_root]
sys.path_importer_cache.clear()
packages = json.loads(sys.argv[2])
importable = [name for name in packages if importlib.util.find_spec(name)]
assert not importable, importable
import numpy as np
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[3])
examples = tf.constant([bytes.fromhex(h) for h in json.loads(sys.argv[4])])
images = tf.constant([bytes.fromhex(h) for h in json.loads(sys.argv[5])])
results = {}
for name, kwargs in (('serving_examples', {'examples': examples}),
                     ('serving_default', {'images': images})):
  for key, value in loaded.signatures[name](**kwargs).items():
    if value.dtype != tf.string:
      results[f'{name}/{key}'] = value.numpy()
heavy = set(packages + ['official', 'tensorflow_transform', 'tfx'])
loaded_modules = sorted({name.split('.')[0] for name in sys.modules} & heavy)
assert not loaded_modules, loaded_modules
np.savez(sys.argv[6], **results)
'''


def test_saved_model_serves_in_a_process_without_this_project(
    exported, loaded, serving_examples, tmp_path):
  images = [_image_features(example)['image/encoded']
            for example in serving_examples]
  result_file = tmp_path / 'outputs.npz'
  env = {key: value for key, value in os.environ.items()
         if key != 'PYTHONPATH'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'
  completed = subprocess.run(
      [sys.executable, '-I', '-c', _ISOLATED_CHILD, str(REPO_ROOT),
       json.dumps(list(PROJECT_PACKAGES)), exported[1],
       json.dumps([example.hex() for example in serving_examples]),
       json.dumps([image.hex() for image in images]), str(result_file)],
      cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
  assert completed.returncode == 0, completed.stderr[-3000:]

  isolated = np.load(result_file)
  for name, kwargs, keys in (
      (export.SERVING_EXAMPLES, {'examples': tf.constant(serving_examples)},
       MAP_KEYS + SEGMENT_KEYS + ('original_size',)),
      (export.SERVING_DEFAULT, {'images': tf.constant(images)},
       coco_panoptic_output.SEGMENT_OUTPUTS + ('num_segments',))):
    here = _numpy(loaded.signatures[name](**kwargs))
    for key in keys:
      np.testing.assert_allclose(isolated[f'{name}/{key}'], here[key],
                                 atol=1e-6, err_msg=f'{name}/{key}')
