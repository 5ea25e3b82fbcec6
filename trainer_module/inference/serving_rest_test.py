"""The exported model answers the documented TF Serving REST request."""

import base64
import io
import json

import numpy as np
from PIL import Image
import pytest
import tensorflow as tf

from schemas.coco_panoptic_png import decode_segment_ids
from trainer_module import export
from trainer_module.inference import predict
from trainer_module.inference import serving_rest

IMAGE_ID = 142238  # 427 × 640, real COCO val2017


@pytest.fixture(scope='module')
def loaded(trained_model_dir):
  return tf.saved_model.load(trained_model_dir)


def _body(encoded: bytes) -> dict:
  """The request body as a client sends it (JSON text, parsed as a server
  does)."""
  text = json.dumps({'instances': [
      {'b64': base64.b64encode(encoded).decode('ascii')}]})
  return json.loads(text)


def _ids_from_examples(loaded, encoded: bytes) -> np.ndarray:
  """Independent path: `serving_examples` at S, segment ids per query (as
  the COCO format defines them), cropped and resized in numpy."""
  example = tf.train.Example(features=tf.train.Features(feature={
      'image/encoded': tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[encoded]))}))
  outputs = {key: value.numpy()[0] for key, value in
             loaded.signatures[export.SERVING_EXAMPLES](
                 examples=tf.constant([example.SerializeToString()])).items()}
  ids = np.zeros(outputs['category_mask'].shape, np.int64)
  for query in np.flatnonzero(outputs['segment_valid']):
    if outputs['segment_is_thing'][query]:
      pixels = outputs['instance_mask'] == query + 1
    else:
      pixels = ((outputs['category_mask'] == outputs['segment_category'][
          query]) & (outputs['instance_mask'] == 0))
    ids[pixels] = query + 1
  valid = outputs['pixel_valid'] > 0
  rows, cols = valid.any(axis=1).sum(), valid.any(axis=0).sum()
  height, width = outputs['original_size']
  y = ((np.arange(height) + 0.5) * rows / height).astype(int)
  x = ((np.arange(width) + 0.5) * cols / width).astype(int)
  return ids[:rows, :cols][y[:, None], x[None, :]]


def test_default_signature_answers_the_documented_request(
    loaded, trained_model_dir, coco_sample_dir, tmp_path):
  image_file = coco_sample_dir / 'input_images' / f'{IMAGE_ID:012d}.jpg'
  encoded = image_file.read_bytes()
  answer = json.loads(json.dumps(serving_rest.predict(loaded,
                                                      _body(encoded))))
  [prediction] = answer['predictions']
  png = base64.b64decode(prediction['panoptic_png_bytes']['b64'])
  ids = decode_segment_ids(np.asarray(Image.open(io.BytesIO(png))))
  assert ids.shape == (427, 640)
  count = prediction['num_segments']
  assert count > 0
  segments = [{'id': prediction['segment_id'][i],
               'category_id': prediction['segment_category_id'][i],
               'isthing': prediction['segment_isthing'][i],
               'score': round(prediction['segment_score'][i], 5)}
              for i in range(count)]
  assert all(value == -1 for key in ('segment_id', 'segment_category_id',
                                     'segment_isthing', 'segment_score')
             for value in prediction[key][count:])
  assert set(np.unique(ids)) - {0} == {s['id'] for s in segments}

  summary = predict.predict(trained_model_dir, image_file.parent,
                            tmp_path / 'predict')
  [annotation] = [a for a in json.loads(
      summary.predictions_json.read_text())['annotations']
                  if a['image_id'] == IMAGE_ID]
  assert annotation['segments_info'] == segments
  predicted = decode_segment_ids(np.asarray(Image.open(
      summary.predictions_dir / annotation['file_name']).convert('RGB')))
  np.testing.assert_array_equal(ids, predicted)
  np.testing.assert_array_equal(ids, _ids_from_examples(loaded, encoded))


def test_requests_tf_serving_refuses_are_named(loaded):
  with pytest.raises(serving_rest.RequestError, match='no "instances"'):
    serving_rest.predict(loaded, {'inputs': []})
  with pytest.raises(serving_rest.RequestError, match='not base64'):
    serving_rest.predict(loaded, {'instances': [{'b64': '***'}]})
  with pytest.raises(serving_rest.RequestError, match=r'instances\[0\] has'):
    serving_rest.predict(loaded, {'instances': [{'image': 'x'}]})
