"""The output folder of `predict` and `evaluate-coco`: PNGs, overlays and
`predictions.json` (layout in `trainer_module/inference/predict.py`).

An output folder that holds an earlier call's results is refused unless the
caller asks to overwrite, which clears those results first: a folder never
mixes two calls' files. JSON files are written to a hidden temporary name and
renamed, so a reader never sees a half-written `predictions.json`. Images
that cannot be decoded are skipped and recorded with the reason.
"""

import dataclasses
import io
import json
import os
import pathlib
import shutil
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from PIL import UnidentifiedImageError

from schemas import load_categories
from schemas.coco_panoptic_png import decode_segment_ids
from trainer_module.inference import overlays

PREDICTIONS_JSON = 'predictions.json'
PREDICTIONS_DIR = 'predictions'
OVERLAYS_DIR = 'overlays'
# Exit status of `predict` / `evaluate-coco` when images were skipped.
EXIT_SKIPPED = 3

PathLike = Union[str, pathlib.Path]


@dataclasses.dataclass
class InputImage:
  """One image to predict.

  Attributes:
    name: File name stem of its outputs (source id or image file stem).
    image_id: COCO image id: `name` as an int when numeric.
    encoded: The encoded JPEG/PNG bytes.
    serialized_example: The raw tf.Example (TFRecord inputs) or None.
    source: Where it was read (file, or file and record), for messages.
    problem: Why it cannot be read (then `encoded` is empty), or None.
  """
  name: str
  image_id: Union[int, str]
  encoded: bytes
  serialized_example: Optional[bytes] = None
  source: str = ''
  problem: Optional[str] = None


@dataclasses.dataclass
class PredictionSummary:
  """What `predict` wrote.

  Attributes:
    skipped: (image, reason) of each image that could not be predicted.
  """
  predictions_json: pathlib.Path
  predictions_dir: pathlib.Path
  overlays_dir: pathlib.Path
  num_images: int
  num_segments: int
  skipped: List[Tuple[str, str]] = dataclasses.field(default_factory=list)


def write_json_atomically(path: pathlib.Path, data: Any, **kwargs) -> None:
  """Writes `data` as JSON to a temporary name beside `path`, then renames."""
  temporary = path.with_name(f'.{path.name}.tmp-{os.getpid()}')
  try:
    temporary.write_text(json.dumps(data, **kwargs))
    os.replace(temporary, path)
  finally:
    if temporary.exists():
      temporary.unlink()


def prepare_output_dir(output_dir: pathlib.Path, overwrite: bool,
                       result_names: Sequence[str]) -> None:
  """Creates `output_dir`; clears or refuses an earlier call's results.

  Only the entries named in `result_names` are results; other files in the
  folder are left alone.

  Raises:
    FileExistsError: if results are there and `overwrite` is false.
  """
  earlier = [name for name in result_names if (output_dir / name).exists()]
  if earlier and not overwrite:
    raise FileExistsError(
        f'{output_dir} holds the results of an earlier call '
        f'({", ".join(earlier)}). Pass --overwrite to clear them first, or '
        'choose another --output.')
  for name in earlier:
    path = output_dir / name
    if path.is_dir() and not path.is_symlink():
      shutil.rmtree(path)
    else:
      path.unlink()
  output_dir.mkdir(parents=True, exist_ok=True)


def read_image_file(path: pathlib.Path) -> Tuple[bytes, Optional[str]]:
  """(bytes, None), or (b'', why) when the file cannot be read."""
  try:
    return path.read_bytes(), None
  except OSError as error:
    return b'', f'cannot be read ({error.strerror or error})'


def unreadable_image_reason(encoded: bytes) -> Optional[str]:
  """Why `encoded` is no decodable JPEG or PNG, or None if it is one."""
  try:
    with Image.open(io.BytesIO(encoded)) as image:
      if image.format not in ('JPEG', 'PNG'):
        return f'a {image.format} image, not a JPEG or PNG'
      image.load()
  except UnidentifiedImageError:
    return 'not a JPEG or PNG image (no known image format)'
  except (OSError, SyntaxError, ValueError,
          Image.DecompressionBombError) as error:
    first_line = str(error).splitlines()[0] if str(error) else ''
    return f'not a readable JPEG or PNG ({first_line or type(error).__name__})'
  return None


def report_skipped(skipped: Sequence[Tuple[str, str]]) -> int:
  """Prints the skipped images with their reasons; the exit status."""
  if not skipped:
    return 0
  print(f'Skipped {len(skipped)} image(s) that could not be predicted '
        f'(exit status {EXIT_SKIPPED}):')
  for image, reason in skipped:
    print(f'  {image}: {reason}')
  return EXIT_SKIPPED


def segments_of(outputs: Mapping[str, Any]
                ) -> Tuple[np.ndarray, List[Dict[str, Any]]]:
  """Segment ids [H, W] and segment infos of one image's `serving_default`
  outputs (`trainer_module.ops.coco_panoptic_output`: the COCO panoptic PNG
  at the original size and its segments, -1 padded)."""
  with Image.open(io.BytesIO(outputs['panoptic_png_bytes'])) as png:
    ids = decode_segment_ids(np.asarray(png.convert('RGB')))
  infos = [{'id': int(outputs['segment_id'][index]),
            'category_id': int(outputs['segment_category_id'][index]),
            'score': round(float(outputs['segment_score'][index]), 5),
            'isthing': int(outputs['segment_isthing'][index])}
           for index in range(int(outputs['num_segments']))]
  return ids, infos


def overlay_image(image: np.ndarray, ids: np.ndarray,
                  infos: Sequence[Mapping[str, Any]],
                  colours: overlays.Colours) -> np.ndarray:
  """The image and its segments overlaid (`overlays.overlay`), side
  by side, uint8 [H, 2W, 3]."""
  category, instance = overlays.masks_of_segments(ids, infos)
  blended = overlays.overlay(image, category, instance, colours)
  return np.concatenate([image.astype(np.uint8), blended], axis=1)


class PredictionWriter:
  """Writes the PNGs and overlays of each image, then `predictions.json`."""

  def __init__(self, output_dir: PathLike, overwrite: bool = False,
               other_results: Sequence[str] = ()):
    output_dir = pathlib.Path(output_dir)
    prepare_output_dir(
        output_dir, overwrite,
        (PREDICTIONS_JSON, PREDICTIONS_DIR, OVERLAYS_DIR) + tuple(
            other_results))
    self.predictions_json = output_dir / PREDICTIONS_JSON
    self.predictions_dir = output_dir / PREDICTIONS_DIR
    self.overlays_dir = output_dir / OVERLAYS_DIR
    self.predictions_dir.mkdir()
    self.overlays_dir.mkdir()
    self._colours = overlays.category_colours()
    self._annotations = []
    self._num_segments = 0
    self.skipped: List[Tuple[str, str]] = []

  def skip(self, image: str, reason: str) -> None:
    """Records an image that is not predicted, and why."""
    self.skipped.append((image, reason))

  def add(self, item: InputImage, outputs: Mapping[str, np.ndarray]) -> None:
    """Writes one image's PNG and overlay from its `serving_default` outputs
    (numpy, without the batch axis)."""
    ids, infos = segments_of(outputs)
    file_name = f'{item.name}.png'
    (self.predictions_dir / file_name).write_bytes(
        outputs['panoptic_png_bytes'])
    image = np.asarray(Image.open(io.BytesIO(item.encoded)).convert('RGB'))
    Image.fromarray(overlay_image(image, ids, infos, self._colours)).save(
        self.overlays_dir / file_name)
    self._annotations.append({'image_id': item.image_id,
                              'file_name': file_name,
                              'segments_info': infos})
    self._num_segments += len(infos)

  def finish(self) -> PredictionSummary:
    """Writes `predictions.json` (atomically)."""
    data: Dict[str, Any] = {'annotations': self._annotations,
                            'categories': load_categories()}
    write_json_atomically(self.predictions_json, data)
    return PredictionSummary(self.predictions_json, self.predictions_dir,
                             self.overlays_dir, len(self._annotations),
                             self._num_segments, list(self.skipped))
