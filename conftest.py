"""Shared pytest set-up: Keras 2 before TensorFlow loads, and data fixtures."""

import os

# Must happen before anything imports TensorFlow (see schemas.keras_env).
os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')

import pathlib

import pytest

from tests import worker_shared

REPO_ROOT = pathlib.Path(__file__).resolve().parent
SHARED_DIR = REPO_ROOT.parent / 'shared'
COCO_SAMPLE_DIR = SHARED_DIR / 'data' / 'coco_panoptic_sample'
GOLDENS_DIR = SHARED_DIR / 'goldens'
# With MASKFORMER_REQUIRE_SHARED=1 (set by .ci/run) a missing ../shared
# directory fails the tests that need it instead of skipping them.
REQUIRE_SHARED_ENV = 'MASKFORMER_REQUIRE_SHARED'


def _shared(directory: pathlib.Path, what: str) -> pathlib.Path:
  """`directory` if it exists; otherwise skips (or fails, in CI) the test."""
  if directory.is_dir():
    return directory
  message = (f'{directory} not found: {what} lives in ../shared beside the '
             'repository.')
  if os.environ.get(REQUIRE_SHARED_ENV) == '1':
    pytest.fail(f'{message} ({REQUIRE_SHARED_ENV}=1)', pytrace=False)
  pytest.skip(message)


@pytest.fixture(scope='session')
def coco_sample_dir() -> pathlib.Path:
  """The two real COCO val2017 images with panoptic PNGs/JSON (../shared)."""
  return _shared(COCO_SAMPLE_DIR, 'the real COCO panoptic sample')


@pytest.fixture(scope='session')
def goldens_dir() -> pathlib.Path:
  """Reference values from the PyTorch criterion and the COCO panoptic API."""
  return _shared(GOLDENS_DIR, 'the goldens directory')


@pytest.fixture(scope='session')
def reference_forward_dir(goldens_dir) -> pathlib.Path:
  """The original MaskFormer's detectron2 weights (two key spellings), their
  config.yaml and every intermediate of its PyTorch forward (forward.npz)."""
  return _shared(goldens_dir / 'reference_forward',
                 'the reference forward oracle')


def _convert_real_sample(coco_sample_dir, output_dir, skip_crowd=False):
  from panoptic_data import coco_conversion
  coco_conversion.convert_coco_panoptic(
      image_dir=coco_sample_dir / 'input_images',
      annotations_file=coco_sample_dir / 'panoptic_examples.json',
      panoptic_masks_dir=coco_sample_dir / 'panoptic_examples',
      output_prefix=output_dir / 'val', skip_crowd=skip_crowd)
  return output_dir


@pytest.fixture(scope='session')
def real_coco_records(coco_sample_dir, tmp_path_factory) -> pathlib.Path:
  """Directory with val-00000-of-00001.tfrecord: the real sample converted by
  TF Model Garden's create_coco_tf_record --include_panoptic_masks."""
  return _convert_real_sample(coco_sample_dir,
                              tmp_path_factory.mktemp('real_coco_records'))


@pytest.fixture(scope='session')
def real_coco_records_skip_crowd(coco_sample_dir,
                                 tmp_path_factory) -> pathlib.Path:
  """`real_coco_records` converted with --panoptic_skip_crowd (crowd -> void)."""
  return _convert_real_sample(
      coco_sample_dir, tmp_path_factory.mktemp('real_coco_records_skip_crowd'),
      skip_crowd=True)


@pytest.fixture(scope='session')
def synthetic_sample(tmp_path_factory) -> pathlib.Path:
  """A small synthetic sample (6 train, 3 val images of 64×64): its root
  directory, with coco/ (COCO panoptic files) and tfrecords/ (TFMG records)."""
  from panoptic_data import sample_data
  root = tmp_path_factory.mktemp('synthetic_sample')
  sample_data.make_sample_tfrecords(root, num_train=6, num_val=3,
                                    image_size=64, seed=7)
  return root


@pytest.fixture(scope='module')
def transformed_sample(synthetic_sample, tmp_path_factory):
  """`synthetic_sample` transformed at S = 64 with N = 8 segment slots, laid
  out as TFX's Transform writes it (see `trainer_module.testing`)."""
  from trainer_module import testing
  return testing.transform_sample(synthetic_sample,
                                  tmp_path_factory.mktemp('transform_output'))


# Pipeline runs shared by several test files (each costs minutes on 2 cores).


@pytest.fixture(scope='session')
def gate_stopped_run(synthetic_sample, tmp_path_factory):
  """A `maskformer-tfx run` whose eval split is bad: every record has a FLOAT
  image/height, the first lacks image/panoptic/category_mask and the second
  has an empty image/encoded. Returns (pipeline root, CompletedProcess)."""
  from tests import pipeline_helpers

  def build():
    records = synthetic_sample / 'tfrecords'
    bad_eval = [pipeline_helpers.with_float_height(example) for example in
                pipeline_helpers.read_examples(str(records / 'val-*'))]
    bad_eval[0] = pipeline_helpers.without_category_mask(bad_eval[0])
    bad_eval[1] = pipeline_helpers.with_empty_image(bad_eval[1])
    root = tmp_path_factory.mktemp('gate_stopped_run')
    data = root / 'data'
    pipeline_helpers.write_examples(
        data / 'train-00000-of-00001.tfrecord',
        pipeline_helpers.read_examples(str(records / 'train-*')))
    pipeline_helpers.write_examples(data / 'val-00000-of-00001.tfrecord',
                                    bad_eval)
    result = pipeline_helpers.run_cli(
        ['run', '--data', str(data), '--pipeline-root', str(root / 'pipeline')])
    return {'root': str(root / 'pipeline'),
            'result': worker_shared.completed_to_json(result)}

  value = worker_shared.build_once(tmp_path_factory, 'gate_stopped_run', build)
  return (pathlib.Path(value['root']),
          worker_shared.completed_from_json(value['result']))


@pytest.fixture(scope='session')
def trained_run_records(tmp_path_factory) -> pathlib.Path:
  """TFRecords of a 32 + 8 image synthetic sample (128×128)."""
  def build():
    from panoptic_data import sample_data
    root = tmp_path_factory.mktemp('trained_run_sample')
    return str(sample_data.make_sample_tfrecords(root, num_train=32, num_val=8,
                                                 image_size=128, seed=5))
  return pathlib.Path(worker_shared.build_once(tmp_path_factory,
                                               'trained_run_records', build))


@pytest.fixture(scope='session')
def trained_run(trained_run_records, tmp_path_factory):
  """The whole pipeline (tiny experiment, E2E_TRAIN_STEPS steps) on
  `trained_run_records`. Returns (pipeline root, CompletedProcess)."""
  from tests import pipeline_helpers

  def build():
    root = tmp_path_factory.mktemp('trained_run')
    result = pipeline_helpers.run_cli(
        ['run', '--data', str(trained_run_records), '--pipeline-root',
         str(root), '--train-steps', str(pipeline_helpers.E2E_TRAIN_STEPS),
         '--pq-lower-bound', str(pipeline_helpers.E2E_PQ_LOWER_BOUND)],
        timeout=1800)
    return {'root': str(root), 'result': worker_shared.completed_to_json(result)}

  value = worker_shared.build_once(tmp_path_factory, 'trained_run', build)
  result = worker_shared.completed_from_json(value['result'])
  assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
  return pathlib.Path(value['root']), result


@pytest.fixture(scope='session')
def trained_model_dir(real_coco_records, tmp_path_factory) -> str:
  """`maskformer_tiny` (S = 64) trained for 2 steps on the real sample by the
  Trainer's run_fn and exported, with inference thresholds 0 so that its
  nearly uniform class scores still give segments."""
  import json
  from trainer_module.run_fn import run_fn
  from trainer_module.testing import PARAMS_OVERRIDE
  from trainer_module.testing import make_fn_args
  from transform_module import beam_runner

  def build():
    graph_dir = tmp_path_factory.mktemp('real_transform')
    beam_runner.run_transform(str(real_coco_records / '*.tfrecord'),
                              str(graph_dir),
                              {'output_size': 64, 'num_segment_slots': 20})
    sample = {'graph': str(graph_dir),
              'transformed': str(graph_dir / 'transformed_examples-*')}
    override = dict(PARAMS_OVERRIDE, task=dict(
        PARAMS_OVERRIDE['task'],
        evaluation={'object_mask_threshold': 0.0, 'overlap_threshold': 0.0}))
    fn_args = make_fn_args(sample, tmp_path_factory.mktemp('trainer'),
                           train_steps=2, params_override=json.dumps(override))
    run_fn(fn_args)
    return fn_args.serving_model_dir

  return worker_shared.build_once(tmp_path_factory, 'trained_model_dir', build)


# `make test` runs two pytest-xdist workers, each test module on one worker
# (`--dist loadscope --no-loadscope-reorder`): the modules are handed out in
# this order. First the longest chains of pipeline runs; last the modules that
# only read the shared `trained_run`, so that they find it built.
FIRST_MODULES = ('tests/test_continuous_training.py',
                 'tests/test_vertex_rehearsal.py',
                 'tests/test_data_validation.py',
                 'tests/test_resume_after_kill.py',
                 'tests/test_spans.py',
                 'tests/test_drift_gate.py')
LAST_MODULES = ('tests/test_pipeline_end_to_end.py',
                'tests/test_report_browser.py',
                'tests/test_report_component.py')


def pytest_collection_modifyitems(items):
  def rank(item) -> int:
    module = pathlib.Path(item.path).relative_to(REPO_ROOT).as_posix()
    if module in FIRST_MODULES:
      return FIRST_MODULES.index(module)
    if module in LAST_MODULES:
      return len(FIRST_MODULES) + 1 + LAST_MODULES.index(module)
    return len(FIRST_MODULES)
  items.sort(key=rank)
