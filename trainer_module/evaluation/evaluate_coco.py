"""COCO's own panoptic quality of an exported model (`maskformer-tfx
evaluate-coco`, `runners.commands.evaluate_coco`).

Runs an exported MaskFormer SavedModel on the images of a COCO panoptic
ground truth (e.g. val2017 with `panoptic_val2017.json`), writes its
predictions in the COCO panoptic results format (`predict.PredictionWriter`:
OUTPUT/predictions.json and the PNG folder named after it,
OUTPUT/predictions/, at each image's original size) and scores them with the
COCO panoptic API's rules, crowd regions included
(`trainer_module.evaluation.coco_panoptic_quality`): the PQ that published
COCO results report. It prints PQ, SQ, RQ (×100) for All, Things and Stuff and
writes them, with every category's values, to OUTPUT/pq.json.

This is not the pipeline gate's PQ: the Evaluator compares at the Transform's
S × S resolution with records converted with `--panoptic_skip_crowd` (crowd
regions are void there); here the ground truth is the original COCO PNGs
and JSON, at the original image size, with COCO's crowd rule.
`panopticapi.evaluation.pq_compute(PANOPTIC_JSON, OUTPUT/predictions.json,
PANOPTIC_DIR)` gives the same numbers on the written files.

An image that cannot be decoded is skipped and named with the reason; PQ is
then over the images predicted (pq.json counts and names the skipped ones)
and the exit status is `prediction_output.EXIT_SKIPPED`. An OUTPUT holding an
earlier call's results is refused unless `--overwrite`.
"""

import json
import pathlib
from typing import Any, Dict, Iterator, List, Mapping, Tuple, Union

import numpy as np
from PIL import Image

from schemas.coco_panoptic_png import decode_segment_ids
from trainer_module.inference import predict
from trainer_module.inference import prediction_output
from trainer_module import progress as train_progress

PQ_JSON = 'pq.json'
PathLike = Union[str, pathlib.Path]
# panoptic_quality_result's dict: {'All'|'Things'|'Stuff': {pq, sq, rq, n},
# 'per_class': {category id: {pq, sq, rq}}}.
PanopticQualityResult = Dict[str, Any]
_GROUPS = ('All', 'Things', 'Stuff')


def _read_json(path: pathlib.Path, what: str) -> Dict[str, Any]:
  try:
    data = json.loads(path.read_text(encoding='utf-8'))
  except FileNotFoundError:
    raise FileNotFoundError(f'{what} {path} does not exist.') from None
  except (json.JSONDecodeError, UnicodeDecodeError) as error:
    raise ValueError(f'{what} {path} is not JSON: {error}') from None
  missing = [key for key in ('images', 'annotations', 'categories')
             if key not in data]
  if missing:
    raise ValueError(f'{what} {path} is not a COCO panoptic JSON: it has no '
                     f'{", ".join(missing)}.')
  return data


def _read_segment_ids(path: pathlib.Path, what: str) -> np.ndarray:
  try:
    with Image.open(path) as image:
      return decode_segment_ids(np.asarray(image.convert('RGB')))
  except FileNotFoundError:
    raise FileNotFoundError(f'{what} {path} does not exist.') from None
  except OSError as error:
    raise ValueError(f'{what} {path} is not a readable PNG: {error}') from None


def _inputs(ground_truth: Mapping[str, Any], images_dir: pathlib.Path
           ) -> Iterator[predict.InputImage]:
  """The image of every ground-truth annotation, named after its PNG."""
  images = {image['id']: image for image in ground_truth['images']}
  for annotation in ground_truth['annotations']:
    image_id = annotation['image_id']
    if image_id not in images:
      raise ValueError(f'Annotation {annotation["file_name"]} names image id '
                       f'{image_id}, which the panoptic JSON does not list.')
    path = images_dir / images[image_id]['file_name']
    if not path.is_file():
      raise FileNotFoundError(f'Image {path} (image id {image_id}) does not '
                              'exist.')
    encoded, problem = prediction_output.read_image_file(path)
    yield prediction_output.InputImage(
        name=pathlib.Path(annotation['file_name']).stem, image_id=image_id,
        encoded=encoded, source=str(path), problem=problem)


def coco_panoptic_quality_of_files(ground_truth: Mapping[str, Any],
                                   panoptic_dir: pathlib.Path,
                                   predictions: Mapping[str, Any],
                                   predictions_dir: pathlib.Path
                                  ) -> PanopticQualityResult:
  """PQ of COCO panoptic prediction files against the ground truth's."""
  # TF Model Garden (and so TensorFlow) loads here, not on `--help`.
  from trainer_module.evaluation import coco_panoptic_quality
  from trainer_module.evaluation import panoptic_quality
  categories = ground_truth['categories']
  by_image = {annotation['image_id']: annotation
              for annotation in predictions['annotations']}
  state = panoptic_quality.PanopticQualityState.zeros(
      panoptic_quality.num_category_slots(categories))
  for gt_annotation in ground_truth['annotations']:
    image_id = gt_annotation['image_id']
    if image_id not in by_image:
      raise ValueError(f'No prediction for image id {image_id} '
                       f'({gt_annotation["file_name"]}).')
    pred_annotation = by_image[image_id]
    state.merge(coco_panoptic_quality.coco_image_panoptic_quality_state(
        _read_segment_ids(panoptic_dir / gt_annotation['file_name'],
                          'Ground-truth PNG'),
        gt_annotation['segments_info'],
        _read_segment_ids(predictions_dir / pred_annotation['file_name'],
                          'Predicted PNG'),
        pred_annotation['segments_info'], categories,
        image=gt_annotation['file_name']))
  return panoptic_quality.panoptic_quality_result(state, categories)


def result_table(result: PanopticQualityResult) -> List[str]:
  """Lines of the PQ table in the layout of `pq_compute` (×100)."""
  lines = [f'{"":<10}| {"PQ":>6} {"SQ":>6} {"RQ":>6} {"N":>5}',
           '-' * 38]
  for group in _GROUPS:
    values = result[group]
    lines.append(f'{group:<10}| {100 * values["pq"]:6.1f} '
                 f'{100 * values["sq"]:6.1f} {100 * values["rq"]:6.1f} '
                 f'{values["n"]:5d}')
  return lines


def evaluate_coco(model_dir: PathLike, images_dir: PathLike,
                  panoptic_json: PathLike, panoptic_dir: PathLike,
                  output_dir: PathLike, batch_size: int = 8,
                  progress=print, overwrite: bool = False
                 ) -> Tuple[PanopticQualityResult, List[Tuple[str, str]]]:
  """Predicts every ground-truth image and scores it (module docstring).

  Returns:
    The result dict of `panoptic_quality.panoptic_quality_result` over the
    predicted images (also written to OUTPUT/pq.json with category names),
    and the (image, reason) of each skipped image.
  """
  images_dir, panoptic_dir = pathlib.Path(images_dir), pathlib.Path(
      panoptic_dir)
  output_dir = pathlib.Path(output_dir)
  ground_truth = _read_json(pathlib.Path(panoptic_json), 'Panoptic JSON')
  if not panoptic_dir.is_dir():
    raise FileNotFoundError(f'Panoptic PNG directory {panoptic_dir} does not '
                            'exist.')
  num_images = len(ground_truth['annotations'])
  writer = prediction_output.PredictionWriter(output_dir, overwrite,
                                              other_results=(PQ_JSON,))
  import tensorflow as tf
  saved_model_dir = predict.resolve_saved_model_dir(model_dir)
  progress(f'Model: {saved_model_dir}; {num_images} images.')
  model = tf.saved_model.load(str(saved_model_dir))
  predict.predict_images(
      model, _inputs(ground_truth, images_dir), writer, batch_size,
      progress=train_progress.RateProgress(
          num_images, 'images', progress, prefix='  predicted ').update)
  summary = writer.finish()
  predictions = json.loads(summary.predictions_json.read_text())
  predicted_ids = {a['image_id'] for a in predictions['annotations']}
  if not predicted_ids:
    raise ValueError(f'No image could be predicted: {summary.skipped[:5]}')
  scored = dict(ground_truth, annotations=[
      a for a in ground_truth['annotations'] if a['image_id'] in predicted_ids])
  progress(f'Scoring {len(scored["annotations"])} of {num_images} images with '
           f'the COCO panoptic rules against {panoptic_dir} ...')
  result = coco_panoptic_quality_of_files(
      scored, panoptic_dir, predictions, summary.predictions_dir)
  names = {int(category['id']): category['name']
           for category in ground_truth['categories']}
  prediction_output.write_json_atomically(output_dir / PQ_JSON, {
      'pq_definition': 'COCO panoptic API (pq_compute): original image '
                       'resolution, crowd regions per COCO',
      'images_scored': len(scored['annotations']),
      'images_skipped': [{'image': image, 'reason': reason}
                         for image, reason in summary.skipped],
      **{group: result[group] for group in _GROUPS},
      'per_class': {str(category_id): dict(values, name=names[category_id])
                    for category_id, values in result['per_class'].items()},
  }, indent=1)
  return result, summary.skipped
