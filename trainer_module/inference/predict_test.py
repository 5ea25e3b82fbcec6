"""Tests of `maskformer-tfx predict` (COCO panoptic predictions)."""

import io
import json
import pathlib
import re
from typing import Dict, List

import numpy as np
from panopticapi import evaluation
from PIL import Image
import pytest
import tensorflow as tf

from runners import cli
from trainer_module.inference import predict
from trainer_module.inference import prediction_output
from schemas.coco_panoptic_png import decode_segment_ids
from trainer_module.ops import coco_panoptic_output

# Real sample: 427×640 and 360×640 images.
REAL_IMAGE_IDS = {142238: (427, 640), 439180: (360, 640)}


def _png_ids(path: pathlib.Path) -> np.ndarray:
  return decode_segment_ids(np.asarray(Image.open(path).convert('RGB')))


def _encoded_png(array: np.ndarray) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format='PNG')
  return buffer.getvalue()


def _pad(values: np.ndarray, size: int) -> np.ndarray:
  padded = np.zeros((size, size) + values.shape[2:], values.dtype)
  padded[:values.shape[0], :values.shape[1]] = values
  return padded


def _served(outputs: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
  """One image's panoptic inference outputs at S as `serving_default`
  answers them (COCO panoptic PNG and segments at the original size)."""
  batched = {key: tf.constant(value[None]) for key, value in outputs.items()}
  served = coco_panoptic_output.coco_panoptic_outputs(batched, 201)
  return {key: value.numpy()[0] for key, value in served.items()}


def _check_files_agree(summary: prediction_output.PredictionSummary,
                       sizes: Dict[object, tuple]) -> List[dict]:
  """PNG ids equal JSON ids per image; PNGs at the original sizes; overlays
  are image | prediction. Returns the annotations."""
  annotations = json.loads(summary.predictions_json.read_text())[
      'annotations']
  assert {a['image_id'] for a in annotations} == set(sizes)
  for annotation in annotations:
    height, width = sizes[annotation['image_id']]
    ids = _png_ids(summary.predictions_dir / annotation['file_name'])
    assert ids.shape == (height, width)
    json_ids = [info['id'] for info in annotation['segments_info']]
    assert len(json_ids) == len(set(json_ids))
    assert set(np.unique(ids)) - {0} == set(json_ids)
    for info in annotation['segments_info']:
      assert set(info) == {'id', 'category_id', 'score', 'isthing'}
    overlay = Image.open(summary.overlays_dir / annotation['file_name'])
    assert overlay.size == (2 * width, height)
  return annotations


def test_ground_truth_written_as_predictions_has_pq_one(coco_sample_dir,
                                                        tmp_path):
  """Serving outputs built from the real ground truth at S = 640 (no resize
  for 640-wide images) must give PQ = 1 with the COCO panoptic API."""
  output_size, num_queries = 640, 64
  ground_truth = json.loads(
      (coco_sample_dir / 'panoptic_examples.json').read_text())
  thing_ids = {c['id'] for c in ground_truth['categories'] if c['isthing']}
  writer = prediction_output.PredictionWriter(tmp_path)
  for annotation in ground_truth['annotations']:
    segment_ids = _png_ids(coco_sample_dir / 'panoptic_examples' /
                           annotation['file_name'])
    height, width = segment_ids.shape
    category = np.zeros((height, width), np.int32)
    instance = np.zeros((height, width), np.int32)
    outputs = {'segment_category': np.zeros([num_queries], np.int32),
               'segment_score': np.zeros([num_queries], np.float32),
               'segment_is_thing': np.zeros([num_queries], bool),
               'segment_valid': np.zeros([num_queries], bool)}
    segments = [s for s in annotation['segments_info'] if not s['iscrowd']]
    for query, segment in enumerate(segments):
      pixels = segment_ids == segment['id']
      is_thing = segment['category_id'] in thing_ids
      category[pixels] = segment['category_id']
      instance[pixels] = query + 1 if is_thing else 0
      outputs['segment_category'][query] = segment['category_id']
      outputs['segment_score'][query] = 0.9
      outputs['segment_is_thing'][query] = is_thing
      outputs['segment_valid'][query] = True
    outputs.update(
        category_mask=_pad(category, output_size),
        instance_mask=_pad(instance, output_size),
        pixel_valid=_pad(np.ones((height, width), np.int32), output_size),
        original_size=np.array([height, width], np.int32))
    stem = pathlib.Path(annotation['file_name']).stem
    image_file = coco_sample_dir / 'input_images' / f'{stem}.jpg'
    writer.add(prediction_output.InputImage(name=stem, image_id=int(stem),
                                  encoded=image_file.read_bytes()),
               _served(outputs))
  summary = writer.finish()
  annotations = _check_files_agree(summary, REAL_IMAGE_IDS)
  assert sum(len(a['segments_info']) for a in annotations) == sum(
      1 for a in ground_truth['annotations'] for s in a['segments_info']
      if not s['iscrowd'])

  results = evaluation.pq_compute(
      str(coco_sample_dir / 'panoptic_examples.json'),
      str(summary.predictions_json),
      gt_folder=str(coco_sample_dir / 'panoptic_examples'),
      pred_folder=str(summary.predictions_dir))
  assert results['All']['pq'] == pytest.approx(1.0)
  assert results['Things']['n'] > 0 and results['Stuff']['n'] > 0


def test_segments_that_vanish_at_the_original_size_are_dropped(tmp_path):
  """A 12×16 image padded to 20×20, shown at an original size of 3×4."""
  output_size, num_queries, original = 20, 64, (3, 4)
  rng = np.random.default_rng(5)
  # Every 2×2 block of the valid region is its own thing segment (48 of them);
  # the nearest downscale to 3×4 keeps only 12 of them.
  owner = np.arange(48).reshape(6, 8).repeat(2, axis=0).repeat(2, axis=1)
  queries = rng.permutation(num_queries)[:48]
  expected_ids = queries[owner] + 1  # segment id = query + 1
  outputs = {
      'category_mask': _pad(np.ones((12, 16), np.int32), output_size),
      'instance_mask': _pad(expected_ids.astype(np.int32), output_size),
      'pixel_valid': _pad(np.ones((12, 16), np.int32), output_size),
      'original_size': np.array(original, np.int32),
      'segment_category': np.where(np.isin(np.arange(num_queries), queries),
                                   1, 0).astype(np.int32),
      'segment_score': np.full([num_queries], 0.5, np.float32),
      'segment_is_thing': np.isin(np.arange(num_queries), queries),
      'segment_valid': np.isin(np.arange(num_queries), queries),
  }
  image = rng.integers(0, 256, original + (3,), dtype=np.uint8)
  writer = prediction_output.PredictionWriter(tmp_path)
  writer.add(prediction_output.InputImage(name='7', image_id=7,
                                encoded=_encoded_png(image)),
             _served(outputs))
  annotations = _check_files_agree(writer.finish(), {7: original})

  # Independent reference: TF's nearest resize (pixel centres).
  reference = tf.image.resize(expected_ids[..., None], original,
                              method='nearest').numpy()[..., 0]
  np.testing.assert_array_equal(_png_ids(tmp_path / 'predictions' / '7.png'),
                                reference)
  assert len(annotations[0]['segments_info']) == len(np.unique(reference)) == 12


def test_predictions_of_a_trained_model_pass_the_coco_panoptic_evaluator(
    trained_model_dir, real_coco_records, coco_sample_dir, tmp_path, capsys):
  record_progress = []
  from_records = predict.predict(trained_model_dir,
                                 str(real_coco_records / '*.tfrecord'),
                                 tmp_path / 'records', batch_size=1,
                                 progress=record_progress.append)
  # TFRecords are not counted beforehand: images done and the rate.
  assert re.fullmatch(r'predicted 2 images  [\d.]+ images/s',
                      record_progress[-1]), record_progress

  parser = cli.build_parser()
  args = parser.parse_args([
      'predict', '--model', trained_model_dir,
      '--input', str(coco_sample_dir / 'input_images'),
      '--output', str(tmp_path / 'images')])
  assert args.handler(args) == 0
  assert re.search(r'predicted 2/2 images  [\d.]+ images/s  ETA 00:00',
                   capsys.readouterr().out)

  records_annotations = _check_files_agree(from_records, REAL_IMAGE_IDS)
  assert from_records.num_segments > 0
  image_dir = tmp_path / 'images'
  images_annotations = json.loads(
      (image_dir / prediction_output.PREDICTIONS_JSON).read_text())['annotations']
  # The images of records and of files give the same results.
  for from_record in records_annotations:
    from_image = next(a for a in images_annotations
                      if a['image_id'] == from_record['image_id'])
    assert from_image['segments_info'] == from_record['segments_info']
    np.testing.assert_array_equal(
        _png_ids(image_dir / prediction_output.PREDICTIONS_DIR /
                 from_image['file_name']),
        _png_ids(from_records.predictions_dir / from_record['file_name']))

  results = evaluation.pq_compute(
      str(coco_sample_dir / 'panoptic_examples.json'),
      str(from_records.predictions_json),
      gt_folder=str(coco_sample_dir / 'panoptic_examples'),
      pred_folder=str(from_records.predictions_dir))
  assert 0.0 <= results['All']['pq'] <= 1.0


def test_saved_model_dir_is_found_in_tfx_and_pusher_layouts(tmp_path):
  artifact = tmp_path / 'artifact' / 'Format-Serving'
  pushed = [tmp_path / 'pushed' / version for version in ('999', '1800')]
  for directory in [artifact] + pushed:
    directory.mkdir(parents=True)
    (directory / 'saved_model.pb').write_bytes(b'')

  assert predict.resolve_saved_model_dir(artifact) == artifact
  assert predict.resolve_saved_model_dir(artifact.parent) == artifact
  assert predict.resolve_saved_model_dir(tmp_path / 'pushed') == pushed[-1]
  with pytest.raises(FileNotFoundError, match='No SavedModel'):
    predict.resolve_saved_model_dir(tmp_path)


def test_unreadable_images_are_skipped_and_the_others_written(
    trained_model_dir, coco_sample_dir, tmp_path, capsys):
  images = tmp_path / 'images'
  images.mkdir()
  for path in (coco_sample_dir / 'input_images').glob('*.jpg'):
    (images / path.name).write_bytes(path.read_bytes())
  (images / 'bad.jpg').write_text('this is text, not a JPEG')
  png = _encoded_png(np.zeros([32, 32, 3], np.uint8))
  (images / 'cut.png').write_bytes(png[:len(png) // 2])
  output = tmp_path / 'out'
  parser = cli.build_parser()
  command = ['predict', '--model', trained_model_dir, '--input', str(images),
             '--output', str(output)]
  args = parser.parse_args(command)
  # One batch holds the good and the bad images.
  assert args.handler(args) == prediction_output.EXIT_SKIPPED
  printed = capsys.readouterr().out
  assert '2 images,' in printed
  assert 'Skipped 2 image(s)' in printed
  assert f'  {images / "bad.jpg"}: not a JPEG or PNG image' in printed
  assert re.search(rf'  {re.escape(str(images / "cut.png"))}: not a readable '
                   r'JPEG or PNG \(.+\)', printed), printed
  annotations = json.loads(
      (output / prediction_output.PREDICTIONS_JSON).read_text())['annotations']
  assert {a['image_id'] for a in annotations} == set(REAL_IMAGE_IDS)
  assert sorted(p.name for p in (output / 'predictions').iterdir()) == [
      '000000142238.png', '000000439180.png']

  # An OUTPUT with an earlier call's results is refused, then cleared.
  with pytest.raises(FileExistsError, match=r'earlier call .*--overwrite'):
    predict.predict(trained_model_dir, images, output)
  for path in (images / 'bad.jpg', images / 'cut.png',
               images / '000000439180.jpg'):
    path.unlink()
  summary = predict.predict(trained_model_dir, images, output, overwrite=True)
  assert summary.skipped == []
  assert sorted(p.name for p in (output / 'predictions').iterdir()) == [
      '000000142238.png']
  assert [a['image_id'] for a in json.loads(
      summary.predictions_json.read_text())['annotations']] == [142238]
