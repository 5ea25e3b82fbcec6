"""`maskformer-tfx predict`: panoptic predictions in the COCO panoptic format.

Runs an exported MaskFormer SavedModel (`trainer_module.export`) on a
directory of images (signature `serving_image`) or on TFRecord files of TF
Model Garden COCO panoptic tf.Examples (signature `serving_default`) and
writes, under OUTPUT:

* `predictions.json`: COCO panoptic results, `annotations` = [{image_id,
  file_name, segments_info: [{id, category_id, score, isthing}]}] (and the
  `categories`). `image_id` is the record's `image/source_id` or the image
  file's stem, as an int when it is numeric (as in COCO).
* `predictions/<name>.png`: segment ids as RGB (id = R + 256·G + 256²·B,
  0 = void) at the image's original size: the model's S × S output is
  cropped to the image (padding removed) and resized with nearest neighbour.
  Segments that vanish in the resize are dropped, so every id in a PNG is in
  the JSON and every JSON segment is in its PNG.
* `overlays/<name>.png`: the image and the prediction overlaid on it (one
  colour per category, white segment borders), side by side.

`panopticapi.evaluation.pq_compute(GT_JSON, OUTPUT/predictions.json,
GT_FOLDER)` evaluates these files (its default prediction folder is the JSON
path without `.json`).
"""

import argparse
import dataclasses
import io
import json
import pathlib
import re
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping,
                    Optional, Sequence, Tuple, Union)

import numpy as np
from PIL import Image

from schemas import load_categories
from schemas.coco_panoptic_png import encode_segment_ids
from tfx_pipeline import cli_args
from tfx_pipeline import segment_images
from trainer_module import progress as train_progress

PREDICTIONS_JSON = 'predictions.json'
PREDICTIONS_DIR = 'predictions'
OVERLAYS_DIR = 'overlays'
IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')

PathLike = Union[str, pathlib.Path]


@dataclasses.dataclass
class InputImage:
  """One image to predict.

  Attributes:
    name: File name stem of its outputs (source id or image file stem).
    image_id: COCO image id: `name` as an int when numeric.
    encoded: The encoded JPEG/PNG bytes.
    serialized_example: The raw tf.Example (TFRecord inputs) or None.
  """
  name: str
  image_id: Union[int, str]
  encoded: bytes
  serialized_example: Optional[bytes] = None


@dataclasses.dataclass
class PredictionSummary:
  """What `predict` wrote."""
  predictions_json: pathlib.Path
  predictions_dir: pathlib.Path
  overlays_dir: pathlib.Path
  num_images: int
  num_segments: int


def _image_id(name: str) -> Union[int, str]:
  return int(name) if name.isdigit() else name


def _safe_name(text: str) -> str:
  return re.sub(r'[^\w.-]', '_', text) or 'image'


def resolve_saved_model_dir(model_dir: PathLike) -> pathlib.Path:
  """The SavedModel directory under `model_dir`.

  Accepts the SavedModel itself, a TFX model artifact (its `Format-Serving`)
  or a directory of versions (e.g. the Pusher's; the latest is used).
  """
  model_dir = pathlib.Path(model_dir)
  if (model_dir / 'saved_model.pb').exists():
    return model_dir
  if (model_dir / 'Format-Serving' / 'saved_model.pb').exists():
    return model_dir / 'Format-Serving'
  versions = sorted(
      (path.parent for path in model_dir.glob('*/saved_model.pb')),
      key=lambda version: (version.name.isdigit(),
                           int(version.name) if version.name.isdigit() else 0,
                           version.name))
  if versions:
    return versions[-1]
  raise FileNotFoundError(f'No SavedModel (saved_model.pb) in {model_dir}.')


def _record_files(input_path: PathLike) -> List[str]:
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = str(input_path)
  files = (sorted(str(p) for p in pathlib.Path(path).iterdir() if p.is_file())
           if pathlib.Path(path).is_dir() else sorted(tf.io.gfile.glob(path)))
  if not files:
    raise FileNotFoundError(f'No input files match {path}.')
  return files


def _image_files(directory: pathlib.Path) -> List[pathlib.Path]:
  return sorted(p for p in directory.iterdir()
                if p.suffix.lower() in IMAGE_SUFFIXES)


def iter_inputs(input_path: PathLike) -> Iterator[InputImage]:
  """The images of a directory of images, or the records of TFRecord files.

  A directory that holds no JPEG/PNG is read as a directory of TFRecord
  files; otherwise `input_path` is a TFRecord file or glob. Files ending in
  `.gz` are GZIP-compressed (as TFX writes them).
  """
  path = pathlib.Path(input_path)
  if path.is_dir():
    images = _image_files(path)
    for image_path in images:
      yield InputImage(name=image_path.stem,
                       image_id=_image_id(image_path.stem),
                       encoded=image_path.read_bytes())
    if images:
      return
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for file_name in _record_files(input_path):
    compression = 'GZIP' if file_name.endswith('.gz') else ''
    for record in tf.data.TFRecordDataset(file_name,
                                          compression_type=compression):
      serialized = record.numpy()
      features = tf.train.Example.FromString(serialized).features.feature
      source_id = features['image/source_id'].bytes_list.value[0].decode()
      yield InputImage(name=_safe_name(source_id),
                       image_id=_image_id(source_id),
                       encoded=features['image/encoded'].bytes_list.value[0],
                       serialized_example=serialized)


def segment_id_map(outputs: Mapping[str, np.ndarray]
                  ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
  """Segment ids [S, S] and segment infos of one image's serving outputs.

  The segment opened by query q gets id q + 1: a thing segment owns the
  pixels with instance q + 1, a stuff segment those of its category with
  instance 0 (stuff queries of one class are merged into the first one).

  Args:
    outputs: One image's `category_mask`, `instance_mask` [S, S] and
      `segment_category`, `segment_score`, `segment_is_thing`,
      `segment_valid` [Q] (numpy).
  """
  category = np.asarray(outputs['category_mask'])
  instance = np.asarray(outputs['instance_mask'])
  ids = np.zeros(category.shape, np.uint32)
  infos = []
  for query in np.flatnonzero(outputs['segment_valid']):
    category_id = int(outputs['segment_category'][query])
    is_thing = bool(outputs['segment_is_thing'][query])
    if is_thing:
      pixels = instance == query + 1
    else:
      pixels = (category == category_id) & (instance == 0)
    ids[pixels] = query + 1
    infos.append({'id': int(query) + 1, 'category_id': category_id,
                  'score': round(float(outputs['segment_score'][query]), 5),
                  'isthing': int(is_thing)})
  return ids, infos


def overlay_image(image: np.ndarray, ids: np.ndarray,
                  infos: Sequence[Mapping[str, Any]],
                  colours: segment_images.Colours) -> np.ndarray:
  """The image and its segments overlaid (`segment_images.overlay`), side
  by side, uint8 [H, 2W, 3]."""
  category, instance = segment_images.masks_of_segments(ids, infos)
  blended = segment_images.overlay(image, category, instance, colours)
  return np.concatenate([image.astype(np.uint8), blended], axis=1)


def _batches(items: Iterator[InputImage],
             batch_size: int) -> Iterator[List[InputImage]]:
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == batch_size:
      yield batch
      batch = []
  if batch:
    yield batch


class PredictionWriter:
  """Writes the PNGs and overlays of each image, then `predictions.json`."""

  def __init__(self, output_dir: PathLike):
    output_dir = pathlib.Path(output_dir)
    self.predictions_json = output_dir / PREDICTIONS_JSON
    self.predictions_dir = output_dir / PREDICTIONS_DIR
    self.overlays_dir = output_dir / OVERLAYS_DIR
    self.predictions_dir.mkdir(parents=True, exist_ok=True)
    self.overlays_dir.mkdir(parents=True, exist_ok=True)
    self._colours = segment_images.category_colours()
    self._annotations = []
    self._num_segments = 0

  def add(self, item: InputImage, outputs: Mapping[str, np.ndarray]) -> None:
    """Writes one image's PNG and overlay from its serving outputs (numpy,
    without the batch axis)."""
    ids, infos = segment_id_map(outputs)
    ids = segment_images.to_original_size(ids, outputs['pixel_valid'],
                                          outputs['original_size'])
    present = set(np.unique(ids).tolist())
    infos = [info for info in infos if info['id'] in present]
    file_name = f'{item.name}.png'
    Image.fromarray(encode_segment_ids(ids)).save(
        self.predictions_dir / file_name)
    image = np.asarray(Image.open(io.BytesIO(item.encoded)).convert('RGB'))
    Image.fromarray(overlay_image(image, ids, infos, self._colours)).save(
        self.overlays_dir / file_name)
    self._annotations.append({'image_id': item.image_id,
                              'file_name': file_name,
                              'segments_info': infos})
    self._num_segments += len(infos)

  def finish(self) -> PredictionSummary:
    """Writes `predictions.json`."""
    self.predictions_json.write_text(json.dumps(
        {'annotations': self._annotations, 'categories': load_categories()}))
    return PredictionSummary(self.predictions_json, self.predictions_dir,
                             self.overlays_dir, len(self._annotations),
                             self._num_segments)


def predict_images(model: Any, items: Iterable[InputImage],
                   writer: PredictionWriter, batch_size: int = 8,
                   progress: Optional[Callable[[int], None]] = None) -> None:
  """Runs a loaded SavedModel on `items` in batches; adds each to `writer`.

  Records go through `serving_default`, image files through `serving_image`;
  `progress(images done)` is called after each batch.
  """
  # pylint: disable=g-import-not-at-top
  import tensorflow as tf
  from trainer_module.export import SERVING_DEFAULT
  from trainer_module.export import SERVING_IMAGE
  # pylint: enable=g-import-not-at-top
  done = 0
  for batch in _batches(iter(items), batch_size):
    if batch[0].serialized_example is not None:
      outputs = model.signatures[SERVING_DEFAULT](
          examples=tf.constant([item.serialized_example for item in batch]))
    else:
      outputs = model.signatures[SERVING_IMAGE](
          images=tf.constant([item.encoded for item in batch]))
    outputs = {key: value.numpy() for key, value in outputs.items()}
    for index, item in enumerate(batch):
      writer.add(item, {key: value[index] for key, value in outputs.items()})
    done += len(batch)
    if progress:
      progress(done)


def predict(model_dir: PathLike, input_path: PathLike, output_dir: PathLike,
            batch_size: int = 8,
            progress: Optional[Callable[[str], None]] = None
           ) -> PredictionSummary:
  """Writes COCO panoptic predictions, PNGs and overlays (module docstring).

  Args:
    model_dir: The exported SavedModel (or a TFX model / Pusher directory).
    input_path: A directory of JPEG/PNG images, or TFRecord file(s) / glob
      of TFMG COCO panoptic tf.Examples.
    output_dir: Where the outputs go (created).
    batch_size: Images per model call.
    progress: Receives progress lines (`predicted done/total images,
      rate, ETA`; the total of TFRecord inputs is not counted beforehand).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  model = tf.saved_model.load(str(resolve_saved_model_dir(model_dir)))
  writer = PredictionWriter(output_dir)
  reporter = None
  if progress:
    path = pathlib.Path(input_path)
    total = len(_image_files(path)) if path.is_dir() else None
    reporter = train_progress.RateProgress(
        total or None, 'images', progress, prefix='predicted ')
  predict_images(model, iter_inputs(input_path), writer, batch_size,
                 progress=reporter.update if reporter else None)
  if reporter:
    reporter.finish()
  summary = writer.finish()
  if not summary.num_images:
    raise FileNotFoundError(f'No images or records in {input_path}.')
  return summary


def _predict_command(args: argparse.Namespace) -> int:
  summary = predict(args.model, args.input, args.output, args.batch_size,
                    progress=lambda line: print(line, flush=True))
  print(f'{summary.num_images} images, {summary.num_segments} segments.')
  print(f'COCO panoptic predictions: {summary.predictions_json}')
  print(f'Segment PNGs:              {summary.predictions_dir}')
  print(f'Overlays:                  {summary.overlays_dir}')
  return 0


def add_predict_parser(subparsers: Any) -> None:
  """Adds the `predict` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'predict',
      help='Write COCO panoptic predictions of an exported model.',
      description=(
          'Runs an exported MaskFormer SavedModel on a directory of images or '
          'on TFRecord files of TF Model Garden COCO panoptic tf.Examples and '
          'writes OUTPUT/predictions.json (COCO panoptic results format), '
          'OUTPUT/predictions/*.png (segment ids as RGB at the original image '
          'size) and side-by-side overlays in OUTPUT/overlays/.'))
  parser.add_argument('--model', required=True,
                      help='SavedModel directory (or a TFX model artifact / '
                      'Pusher directory: its latest SavedModel).')
  parser.add_argument('--input', required=True,
                      help='A directory of JPEG/PNG images, or TFRecord '
                      'file(s) / glob (.gz = GZIP).')
  parser.add_argument('--output', required=True, type=pathlib.Path,
                      help='Output directory (created).')
  parser.add_argument('--batch-size', type=cli_args.positive_int, default=8,
                      help='Images per model call (default 8).')
  parser.set_defaults(handler=_predict_command)
