"""The Examples section: eval images with their ground truth and the
exported model's prediction overlaid (`trainer_module.inference.overlays`, the
same maps and overlay style as `maskformer-tfx predict`)."""

import os
from typing import Any, List, Mapping, Sequence, Tuple

import numpy as np

from trainer_module.inference import prediction_output
from trainer_module.inference import overlays
from tfx_pipeline.report import html_parts as h
from tfx_pipeline.report import run_record


def _decode(feature: Any, channels: int) -> np.ndarray:
  import tensorflow as tf
  return tf.io.decode_image(feature.bytes_list.value[0], channels=channels,
                            expand_animations=False).numpy()


def _eval_records(examples_uri: str, count: int) -> List[bytes]:
  import tensorflow as tf
  files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, 'Split-eval',
                                               '*')))
  if not files:
    raise run_record.Unavailable(f'no eval split files in {examples_uri}')
  dataset = tf.data.TFRecordDataset(files, compression_type='GZIP')
  return [record.numpy() for record in dataset.take(count)]


def _legend(category_ids: Sequence[int], names: Mapping[int, str],
            colours: Mapping[int, Tuple[int, int, int]]) -> str:
  items = ''.join(
      f'<span class="legend-item"><span class="swatch" style="background:'
      f'rgb{tuple(colours.get(i, overlays.UNKNOWN_COLOUR))}"></span>'
      f'{h.e(names.get(i, i))}</span>' for i in category_ids)
  return f'<div class="legend">{items}</div>'


def _examples_html(run: run_record.PipelineRun, num_examples: int) -> str:
  import tensorflow as tf
  from tfx.utils import path_utils
  from trainer_module import export
  model = run.output('Trainer', 'model')
  examples = run.output('ImportExampleGen', 'examples')
  serving_dir = path_utils.serving_model_path(model.uri)
  if not tf.io.gfile.isdir(serving_dir):
    raise run_record.Unavailable(f'no exported model in {serving_dir}')
  records = _eval_records(examples.uri, num_examples)
  loaded = tf.saved_model.load(serving_dir)
  serve = loaded.signatures[export.SERVING_DEFAULT]
  encoded = [tf.train.Example.FromString(record).features.feature[
      'image/encoded'].bytes_list.value[0] for record in records]
  outputs = {key: value.numpy() for key, value in serve(
      **{export.IMAGES_INPUT: tf.constant(encoded)}).items()}
  names = overlays.category_names()
  colours = overlays.category_colours()
  blocks = []
  for index, record in enumerate(records):
    features = tf.train.Example.FromString(record).features.feature
    image = _decode(features['image/encoded'], 3)
    gt_category = _decode(features['image/panoptic/category_mask'], 1)[..., 0]
    gt_instance = _decode(features['image/panoptic/instance_mask'], 1)[..., 0]
    size = gt_category.shape
    pred_category, pred_instance = overlays.masks_of_segments(
        *prediction_output.segments_of(
            {key: value[index] for key, value in outputs.items()}))
    if pred_category.shape != size:
      raise run_record.Unavailable(f'the model\'s PNG size {pred_category.shape} '
                        f'differs from the image size {size}')
    source_id = features['image/source_id'].bytes_list.value[0].decode()
    present = sorted((set(np.unique(gt_category)) |
                      set(np.unique(pred_category))) - {0})
    panels = ''.join(
        f'<figure>{h.png_img(array, f"{title} {source_id}")}'
        f'<figcaption>{h.e(title)}</figcaption></figure>'
        for title, array in (
            ('image', image),
            ('ground truth', overlays.overlay(
                image, gt_category, gt_instance, colours)),
            ('prediction' if pred_category.any() else
             'prediction (no segment: all void)',
             overlays.overlay(image, pred_category, pred_instance,
                                    colours))))
    blocks.append(f'<div class="example-row"><p>Image '
                  f'<code>{h.e(source_id)}</code> ({size[1]}×{size[0]})</p>'
                  f'<div class="panels">{panels}</div>'
                  f'{_legend([int(i) for i in present], names, colours)}</div>')
  return (f'<p>{len(records)} eval images of <code>{h.e(examples.uri)}</code> '
          f'through the exported model <code>{h.e(serving_dir)}</code> '
          f'(signature {export.SERVING_DEFAULT}); segments coloured by '
          'category, instances shifted in shade, void not coloured.</p>'
          + ''.join(blocks))


def examples_section(run: run_record.PipelineRun, num_examples: int) -> str:
  return h.subsection('Ground truth and predictions',
                      lambda: _examples_html(run, num_examples))

