"""The prediction output folder: reuse refused or cleared, skipped images,
JSON written by rename, and the one-at-a-time retry of a refused batch."""

import io
import json
import os
import pathlib

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from trainer_module.inference import predict
from trainer_module.inference import prediction_output
from trainer_module.inference.prediction_output import InputImage


def _encoded(array: np.ndarray, image_format: str) -> bytes:
  buffer = io.BytesIO()
  Image.fromarray(array).save(buffer, format=image_format)
  return buffer.getvalue()


def test_unreadable_image_reasons():
  image = np.zeros([8, 8, 3], np.uint8)
  assert prediction_output.unreadable_image_reason(
      _encoded(image, 'PNG')) is None
  assert prediction_output.unreadable_image_reason(
      _encoded(image, 'JPEG')) is None
  assert prediction_output.unreadable_image_reason(b'hello') == (
      'not a JPEG or PNG image (no known image format)')
  assert prediction_output.unreadable_image_reason(
      _encoded(image, 'BMP')) == 'a BMP image, not a JPEG or PNG'
  png = _encoded(np.arange(64 * 64 * 3).reshape(64, 64, 3).astype(np.uint8),
                 'PNG')
  assert prediction_output.unreadable_image_reason(
      png[:len(png) // 2]).startswith('not a readable JPEG or PNG (')


def test_earlier_results_are_refused_or_cleared(tmp_path):
  output = tmp_path / 'out'
  prediction_output.PredictionWriter(output).finish()
  (output / 'predictions' / 'old.png').write_bytes(b'old')
  (output / 'notes.txt').write_text('mine')
  with pytest.raises(FileExistsError) as error:
    prediction_output.PredictionWriter(output)
  assert str(error.value) == (
      f'{output} holds the results of an earlier call (predictions.json, '
      'predictions, overlays). Pass --overwrite to clear them first, or '
      'choose another --output.')
  assert (output / 'predictions' / 'old.png').exists()
  prediction_output.PredictionWriter(output, overwrite=True)
  assert not (output / 'predictions.json').exists()
  assert not (output / 'predictions' / 'old.png').exists()
  assert (output / 'notes.txt').read_text() == 'mine'
  evaluation = tmp_path / 'evaluation'
  evaluation.mkdir()
  (evaluation / 'pq.json').write_text('{}')
  with pytest.raises(FileExistsError, match=r'earlier call \(pq\.json\)'):
    prediction_output.PredictionWriter(evaluation, other_results=('pq.json',))


def test_json_is_written_by_rename(tmp_path, monkeypatch):
  path = tmp_path / 'predictions.json'
  path.write_text('{"old": 1}')
  renames = []
  real_replace = os.replace

  def replace(source, target):
    # At the rename, the target still holds the old complete file.
    assert json.loads(pathlib.Path(target).read_text()) == {'old': 1}
    renames.append((os.path.basename(source), os.path.basename(target)))
    real_replace(source, target)

  monkeypatch.setattr(prediction_output.os, 'replace', replace)
  prediction_output.write_json_atomically(path, {'new': 2})
  assert json.loads(path.read_text()) == {'new': 2}
  assert renames == [(f'.predictions.json.tmp-{os.getpid()}',
                      'predictions.json')]
  assert sorted(os.listdir(tmp_path)) == ['predictions.json']


class _RefusesMarkedImages:
  """A serving_default stand-in: its decoder refuses the bytes b'MARK...'
  (after they passed the PIL check), as TF's refuses some files PIL reads."""

  def __init__(self, size=4, queries=2):
    self.size, self.queries = size, queries
    self.calls = []
    self.signatures = {'serving_default': self._serve}

  def _serve(self, images):
    encoded = [bytes(value) for value in images.numpy()]
    self.calls.append(len(encoded))
    if any(value.endswith(b'MARK') for value in encoded):
      raise tf.errors.InvalidArgumentError(None, None, 'Invalid JPEG data\n'
                                           'stack trace line')
    batch, size, queries = len(encoded), self.size, self.queries
    png = tf.io.encode_png(tf.pad(tf.ones([size, size, 1], tf.uint8),
                                  [[0, 0], [0, 0], [0, 2]]))  # id 1
    segment = tf.constant([[1] + [-1] * (queries - 1)] * batch, tf.int32)
    return {
        'panoptic_png_bytes': tf.fill([batch], png),
        'segment_id': segment,
        'segment_category_id': segment,
        'segment_isthing': segment,
        'segment_score': tf.cast(segment, tf.float32) / 2,
        'num_segments': tf.ones([batch], tf.int32),
    }


def test_a_batch_the_model_refuses_is_retried_one_image_at_a_time(tmp_path):
  image = _encoded(np.zeros([4, 4, 3], np.uint8), 'PNG')
  items = [InputImage(name=f'{index}', image_id=index, encoded=image,
                      source=f'/in/{index}.png') for index in range(3)]
  items[1].encoded = image + b'MARK'  # PIL reads it; the "model" refuses it.
  items.append(InputImage(name='gone', image_id=9, encoded=b'', source='/in/'
                          'gone.png', problem='cannot be read (Permission '
                          'denied)'))
  model = _RefusesMarkedImages()
  writer = prediction_output.PredictionWriter(tmp_path)
  predict.predict_images(model, items, writer, batch_size=8)
  summary = writer.finish()
  assert model.calls == [3, 1, 1, 1]
  assert summary.skipped == [
      ('/in/gone.png', 'cannot be read (Permission denied)'),
      ('/in/1.png', 'the model cannot decode it (Invalid JPEG data)')]
  annotations = json.loads(summary.predictions_json.read_text())['annotations']
  assert [a['image_id'] for a in annotations] == [0, 2]
  assert sorted(os.listdir(summary.predictions_dir)) == ['0.png', '2.png']


def test_an_unreadable_file_is_named_with_the_reason(tmp_path):
  path = tmp_path / 'image.jpg'
  path.write_bytes(b'\xff\xd8')
  assert prediction_output.read_image_file(path) == (b'\xff\xd8', None)
  folder = tmp_path / 'folder.jpg'  # Reading a folder fails as a file would.
  folder.mkdir()
  assert prediction_output.read_image_file(folder) == (
      b'', 'cannot be read (Is a directory)')
