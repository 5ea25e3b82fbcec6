"""Shared pytest set-up: Keras 2 before TensorFlow loads, and data fixtures."""

import os

# Must happen before anything imports TensorFlow (see tfx_pipeline.keras_env).
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pathlib  # pylint: disable=g-import-not-at-top,wrong-import-position

import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

REPO_ROOT = pathlib.Path(__file__).resolve().parent
SHARED_DIR = REPO_ROOT.parent / 'shared'
COCO_SAMPLE_DIR = SHARED_DIR / 'data' / 'coco_panoptic_sample'
GOLDENS_DIR = SHARED_DIR / 'goldens'


@pytest.fixture(scope='session')
def coco_sample_dir() -> pathlib.Path:
  """The two real COCO val2017 images with panoptic PNGs/JSON (../shared)."""
  if not COCO_SAMPLE_DIR.is_dir():
    pytest.skip(f'{COCO_SAMPLE_DIR} not found: the real COCO panoptic sample '
                'lives in ../shared beside the repository.')
  return COCO_SAMPLE_DIR


@pytest.fixture(scope='session')
def goldens_dir() -> pathlib.Path:
  """Reference values from the PyTorch criterion and the COCO panoptic API."""
  if not GOLDENS_DIR.is_dir():
    pytest.skip(f'{GOLDENS_DIR} not found: goldens live in ../shared beside '
                'the repository.')
  return GOLDENS_DIR


@pytest.fixture(scope='session')
def real_coco_records(coco_sample_dir, tmp_path_factory) -> pathlib.Path:
  """Directory with val-00000-of-00001.tfrecord: the real sample converted by
  TF Model Garden's create_coco_tf_record --include_panoptic_masks."""
  from tfx_pipeline import coco_conversion  # pylint: disable=g-import-not-at-top
  output_dir = tmp_path_factory.mktemp('real_coco_records')
  coco_conversion.convert_coco_panoptic(
      image_dir=coco_sample_dir / 'input_images',
      annotations_file=coco_sample_dir / 'panoptic_examples.json',
      panoptic_masks_dir=coco_sample_dir / 'panoptic_examples',
      output_prefix=output_dir / 'val')
  return output_dir


@pytest.fixture(scope='session')
def synthetic_sample(tmp_path_factory) -> pathlib.Path:
  """A small synthetic sample (6 train, 3 val images of 64×64): its root
  directory, with coco/ (COCO panoptic files) and tfrecords/ (TFMG records)."""
  from tfx_pipeline import sample_data  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('synthetic_sample')
  sample_data.make_sample_tfrecords(root, num_train=6, num_val=3,
                                    image_size=64, seed=7)
  return root
