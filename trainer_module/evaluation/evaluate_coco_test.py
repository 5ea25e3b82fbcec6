"""`maskformer-tfx evaluate-coco` on the real COCO sample, checked against
the COCO panoptic API's `pq_compute` on the files it writes."""

import json
import re
import shutil

from panopticapi import evaluation
import pytest

from runners import cli
from trainer_module.evaluation import evaluate_coco
from trainer_module.inference import prediction_output


def test_evaluate_coco_prints_the_coco_panoptic_apis_pq(
    trained_model_dir, coco_sample_dir, tmp_path, capsys):
  output = tmp_path / 'eval'
  assert cli.main([
      'evaluate-coco', '--model', trained_model_dir,
      '--images', str(coco_sample_dir / 'input_images'),
      '--panoptic-json', str(coco_sample_dir / 'panoptic_examples.json'),
      '--panoptic-dir', str(coco_sample_dir / 'panoptic_examples'),
      '--output', str(output), '--batch-size', '1']) == 0
  printed = capsys.readouterr().out
  assert re.search(r'predicted 2/2 images  [\d.]+ images/s  ETA 00:00',
                   printed), printed

  predictions_json = output / prediction_output.PREDICTIONS_JSON
  predictions_dir = output / prediction_output.PREDICTIONS_DIR
  assert sorted(p.name for p in predictions_dir.iterdir()) == [
      '000000142238.png', '000000439180.png']
  expected = evaluation.pq_compute(
      str(coco_sample_dir / 'panoptic_examples.json'), str(predictions_json),
      gt_folder=str(coco_sample_dir / 'panoptic_examples'),
      pred_folder=str(predictions_dir))
  written = json.loads((output / evaluate_coco.PQ_JSON).read_text())
  assert written['Things']['n'] + written['Stuff']['n'] > 0
  for group in ('All', 'Things', 'Stuff'):
    for key in ('pq', 'sq', 'rq'):
      assert written[group][key] == pytest.approx(expected[group][key],
                                                  abs=1e-12)
    assert written[group]['n'] == expected[group]['n']
    values = expected[group]
    assert (f'{group:<10}| {100 * values["pq"]:6.1f} '
            f'{100 * values["sq"]:6.1f} {100 * values["rq"]:6.1f}') in printed
  for category_id, values in expected['per_class'].items():
    assert written['per_class'][str(category_id)]['pq'] == pytest.approx(
        values['pq'], abs=1e-12)
  assert written['per_class']['1']['name'] == 'person'


def test_missing_image_is_named(trained_model_dir, coco_sample_dir, tmp_path,
                                capsys):
  images = tmp_path / 'images'
  images.mkdir()
  shutil.copy(coco_sample_dir / 'input_images' / '000000142238.jpg', images)
  assert cli.main([
      'evaluate-coco', '--model', trained_model_dir, '--images', str(images),
      '--panoptic-json', str(coco_sample_dir / 'panoptic_examples.json'),
      '--panoptic-dir', str(coco_sample_dir / 'panoptic_examples'),
      '--output', str(tmp_path / 'eval')]) == 1
  error = capsys.readouterr().err
  assert 'evaluate-coco failed' in error
  assert '000000439180.jpg' in error and 'does not exist' in error


def test_undecodable_image_is_skipped_and_output_reuse_refused(
    trained_model_dir, coco_sample_dir, tmp_path, capsys):
  images = tmp_path / 'images'
  shutil.copytree(coco_sample_dir / 'input_images', images)
  (images / '000000439180.jpg').write_text('not an image')
  output = tmp_path / 'eval'
  command = [
      'evaluate-coco', '--model', trained_model_dir, '--images', str(images),
      '--panoptic-json', str(coco_sample_dir / 'panoptic_examples.json'),
      '--panoptic-dir', str(coco_sample_dir / 'panoptic_examples'),
      '--output', str(output)]
  assert cli.main(command) == prediction_output.EXIT_SKIPPED
  printed = capsys.readouterr().out
  assert 'predicted images only, 1 skipped' in printed
  assert (f'  {images / "000000439180.jpg"}: not a JPEG or PNG image'
          in printed)
  written = json.loads((output / evaluate_coco.PQ_JSON).read_text())
  assert written['images_scored'] == 1
  assert [s['image'] for s in written['images_skipped']] == [
      str(images / '000000439180.jpg')]
  annotations = json.loads(
      (output / prediction_output.PREDICTIONS_JSON).read_text())['annotations']
  assert [a['image_id'] for a in annotations] == [142238]

  # The same OUTPUT again: refused, untouched; --overwrite replaces it.
  assert cli.main(command) == 1
  assert '--overwrite' in capsys.readouterr().err
  assert json.loads((output / evaluate_coco.PQ_JSON).read_text()) == written
  shutil.copy(coco_sample_dir / 'input_images' / '000000439180.jpg', images)
  assert cli.main(command + ['--overwrite']) == 0
  assert json.loads(
      (output / evaluate_coco.PQ_JSON).read_text())['images_scored'] == 2
