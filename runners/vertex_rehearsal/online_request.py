"""One online prediction request against the rehearsal's deployed model.

After a rehearsal that deployed a version (a captured `deploy_model`
request), the documented request body (`{"instances": [{"b64": ...}]}`,
docs/deploy_vertex.md) with the first eval image of the run is answered by
the deployed version's SavedModel (its upload's `artifact_uri`) with TF
Serving's row-format rules (`trainer_module.inference.serving_rest`), as the endpoint
would answer it.
"""

import base64
import glob
import io
import os
from typing import List, Optional

from runners.vertex_rehearsal import fake_registry


def _deployed_model_dir(requests_dir: str) -> Optional[str]:
  """The artifact_uri of the version the last deploy request names."""
  deploys = fake_registry.captured('deploy_model', requests_dir)
  if not deploys:
    return None
  model, version = deploys[-1]['deployed_model']['model'].rsplit('@', 1)
  uploads = fake_registry.captured('upload_model', requests_dir)
  # Version 1 is the upload that created the model (`.../models/<n>` is
  # upload n), version k the (k - 1)-th upload with it as parent_model.
  versions = [upload for number, upload in enumerate(uploads, start=1)
              if upload.get('parent_model') == model or (
                  not upload.get('parent_model')
                  and model.endswith(f'/models/{number}'))]
  return versions[int(version) - 1]['model']['artifact_uri']


def _first_eval_image(job_root: str) -> bytes:
  import tensorflow as tf
  files = sorted(glob.glob(os.path.join(
      job_root, 'ImportExampleGen_*', 'examples', 'Split-eval', '*')))
  record = next(iter(tf.data.TFRecordDataset(files, compression_type='GZIP')))
  example = tf.train.Example.FromString(record.numpy())
  return example.features.feature['image/encoded'].bytes_list.value[0]


def answer(requests_dir: str, job_root: str) -> List[str]:
  """Lines describing the deployed model's answer; [] without a deploy."""
  model_dir = _deployed_model_dir(requests_dir)
  if model_dir is None:
    return []
  import numpy as np
  from PIL import Image
  import tensorflow as tf
  from schemas.coco_panoptic_png import decode_segment_ids
  from trainer_module.inference import serving_rest
  body = {'instances': [{'b64': base64.b64encode(
      _first_eval_image(job_root)).decode('ascii')}]}
  [prediction] = serving_rest.predict(tf.saved_model.load(model_dir),
                                      body)['predictions']
  png = base64.b64decode(prediction['panoptic_png_bytes']['b64'])
  ids = decode_segment_ids(np.asarray(Image.open(io.BytesIO(png))))
  count = prediction['num_segments']
  lines = [f'Online request to the deployed model ({model_dir}): '
           f'{{"instances": [{{"b64": <{len(body["instances"][0]["b64"])} '
           f'characters>}}]}} -> a {ids.shape[1]}x{ids.shape[0]} panoptic '
           f'PNG, {count} segments']
  for index in range(count):
    lines.append(
        f'  segment {prediction["segment_id"][index]}: category '
        f'{prediction["segment_category_id"][index]}, isthing '
        f'{prediction["segment_isthing"][index]}, score '
        f'{prediction["segment_score"][index]:.3f}, '
        f'{int((ids == prediction["segment_id"][index]).sum())} pixels')
  return lines
