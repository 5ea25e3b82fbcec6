"""Panoptic predictions of an exported model in the COCO panoptic format
(`maskformer-tfx predict`, `runners.commands.predict`).

Runs an exported MaskFormer SavedModel (`trainer_module.export`, signature
`serving_default`, the one a deployed model answers with) on a directory of
images or on the images of TFRecord files of TF Model Garden COCO panoptic
tf.Examples and writes, under OUTPUT:

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

An image that cannot be read or decoded is skipped and named with the reason;
the others are predicted and written. An OUTPUT holding an earlier call's
results is refused unless `--overwrite` (`prediction_output`).

`panopticapi.evaluation.pq_compute(GT_JSON, OUTPUT/predictions.json,
GT_FOLDER)` evaluates these files (its default prediction folder is the JSON
path without `.json`).
"""

import pathlib
import re
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Optional,
                    Union)

from trainer_module.inference import prediction_output
from trainer_module.inference.prediction_output import InputImage
from trainer_module.inference.prediction_output import PredictionSummary
from trainer_module.inference.prediction_output import PredictionWriter
from trainer_module import progress as train_progress

IMAGE_SUFFIXES = ('.jpg', '.jpeg', '.png')

PathLike = Union[str, pathlib.Path]


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
  import tensorflow as tf
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
      encoded, problem = prediction_output.read_image_file(image_path)
      yield InputImage(name=image_path.stem,
                       image_id=_image_id(image_path.stem),
                       encoded=encoded, source=str(image_path),
                       problem=problem)
    if images:
      return
  import tensorflow as tf
  for file_name in _record_files(input_path):
    compression = 'GZIP' if file_name.endswith('.gz') else ''
    for index, record in enumerate(tf.data.TFRecordDataset(
        file_name, compression_type=compression)):
      serialized = record.numpy()
      features = tf.train.Example.FromString(serialized).features.feature
      source = f'{file_name}, record {index + 1}'
      try:
        source_id = features['image/source_id'].bytes_list.value[0].decode()
        encoded = features['image/encoded'].bytes_list.value[0]
      except (IndexError, UnicodeDecodeError):
        yield InputImage(name=f'record-{index + 1}', image_id=index + 1,
                         encoded=b'', source=source,
                         problem='no image/source_id or image/encoded')
        continue
      yield InputImage(name=_safe_name(source_id),
                       image_id=_image_id(source_id), encoded=encoded,
                       serialized_example=serialized,
                       source=f'{source} ({source_id})')


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


def predict_images(model: Any, items: Iterable[InputImage],
                   writer: PredictionWriter, batch_size: int = 8,
                   progress: Optional[Callable[[int], None]] = None) -> None:
  """Runs a loaded SavedModel on `items` in batches; adds each to `writer`.

  The images of records and image files go through `serving_default`;
  `progress(images done)` is called after each batch. An image that cannot
  be read, is no decodable JPEG/PNG, or that the model's decoder refuses is
  skipped (`writer.skip`, with the reason); the others are predicted.
  """
  import tensorflow as tf
  done = 0
  for batch in _batches(iter(items), batch_size):
    readable = []
    for item in batch:
      reason = item.problem or prediction_output.unreadable_image_reason(
          item.encoded)
      if reason:
        writer.skip(item.source or item.name, reason)
      else:
        readable.append(item)
    try:
      predicted = [(readable, _run_model(model, readable))] if readable else []
    except tf.errors.InvalidArgumentError:
      # The image the decoder refuses fails its whole batch: predict the
      # batch's images one at a time to keep the others.
      predicted = []
      for item in readable:
        try:
          predicted.append(([item], _run_model(model, [item])))
        except tf.errors.InvalidArgumentError as error:
          writer.skip(item.source or item.name, 'the model cannot decode it ('
                      f'{error.message.splitlines()[0]})')
    for predicted_items, outputs in predicted:
      for index, item in enumerate(predicted_items):
        writer.add(item, {key: value[index] for key, value in outputs.items()})
    done += len(batch)
    if progress:
      progress(done)


def _run_model(model: Any, batch: List[InputImage]) -> Dict[str, Any]:
  """The `serving_default` outputs (numpy) of one batch of images."""
  import tensorflow as tf
  from trainer_module.export import IMAGES_INPUT
  from trainer_module.export import SERVING_DEFAULT
  outputs = model.signatures[SERVING_DEFAULT](
      **{IMAGES_INPUT: tf.constant([item.encoded for item in batch])})
  return {key: value.numpy() for key, value in outputs.items()}


def predict(model_dir: PathLike, input_path: PathLike, output_dir: PathLike,
            batch_size: int = 8,
            progress: Optional[Callable[[str], None]] = None,
            overwrite: bool = False) -> PredictionSummary:
  """Writes COCO panoptic predictions, PNGs and overlays (module docstring).

  Args:
    model_dir: The exported SavedModel (or a TFX model / Pusher directory).
    input_path: A directory of JPEG/PNG images, or TFRecord file(s) / glob
      of TFMG COCO panoptic tf.Examples.
    output_dir: Where the outputs go (created).
    batch_size: Images per model call.
    progress: Receives progress lines (`predicted done/total images,
      rate, ETA`; the total of TFRecord inputs is not counted beforehand).
    overwrite: Clear an earlier call's results in `output_dir` (else they
      are refused).

  Returns:
    The summary, with the skipped images and why.
  """
  import tensorflow as tf
  writer = PredictionWriter(output_dir, overwrite)
  model = tf.saved_model.load(str(resolve_saved_model_dir(model_dir)))
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
  if not summary.num_images and not summary.skipped:
    raise FileNotFoundError(f'No images or records in {input_path}.')
  return summary
