"""Synthetic COCO panoptic sample: small images a tiny MaskFormer learns on a CPU.

Writes the exact COCO panoptic layout (JPEG images, panoptic PNGs with segment
id = R + 256·G + 256²·B, a panoptic JSON per split with the real 133 COCO
panoptic categories). Every image has two *stuff* regions (an upper and a lower
background, each textured) and 1–6 *things* drawn as distinct shapes/colours;
a category can appear several times in one image. Output is deterministic for
a seed.
"""

import dataclasses
import json
import pathlib
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw

from panoptic_data import coco_conversion
from schemas import load_categories
from schemas.coco_panoptic_png import encode_segment_ids

# COCO panoptic category ids used by the sample.
PERSON, CAR, SPORTS_BALL, KITE = 1, 3, 37, 38
WALL_BRICK, SKY, ROAD, SAND, GRASS = 171, 187, 149, 154, 193

THING_CATEGORIES = (PERSON, CAR, SPORTS_BALL, KITE)
UPPER_STUFF = (SKY, WALL_BRICK)
LOWER_STUFF = (GRASS, SAND, ROAD)

_THING_COLOURS = {
    PERSON: (210, 35, 45),
    CAR: (25, 40, 170),
    SPORTS_BALL: (250, 150, 20),
    KITE: (190, 40, 200),
}

MIN_THINGS, MAX_THINGS = 1, 6


@dataclasses.dataclass(frozen=True)
class SplitFiles:
  """Where one split of the COCO panoptic sample lives."""
  image_dir: pathlib.Path
  panoptic_dir: pathlib.Path
  annotations_file: pathlib.Path


def split_files(coco_dir: pathlib.Path, split: str) -> SplitFiles:
  """Returns the file layout of `split` under a COCO panoptic directory."""
  coco_dir = pathlib.Path(coco_dir)
  return SplitFiles(
      image_dir=coco_dir / split / 'images',
      panoptic_dir=coco_dir / split / 'panoptic',
      annotations_file=coco_dir / 'annotations' / f'panoptic_{split}.json')


def _texture(rng: np.random.Generator, category_id: int,
             shape: Tuple[int, int]) -> np.ndarray:
  """An RGB float texture [H, W, 3] characteristic of a stuff category."""
  h, w = shape
  yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
  noise = rng.normal(0.0, 6.0, size=(h, w, 1)).astype(np.float32)
  if category_id == SKY:
    base = np.array([110, 165, 225], np.float32) + (yy / max(h, 1) * 40)[..., None]
  elif category_id == WALL_BRICK:
    brick_rows = (yy // 8).astype(np.int32)
    offset = np.where(brick_rows % 2 == 0, 0, 8)
    mortar = ((yy % 8) < 1) | (((xx + offset) % 16) < 1)
    base = np.where(mortar[..., None], np.float32([200, 195, 185]),
                    np.float32([150, 60, 50]))
  elif category_id == GRASS:
    stripes = (np.sin(xx * 0.9 + yy * 0.3) * 18)[..., None]
    base = np.array([60, 150, 55], np.float32) + stripes
  elif category_id == SAND:
    speckles = (rng.random((h, w, 1)) < 0.08) * -45.0
    base = np.array([225, 200, 140], np.float32) + speckles
  elif category_id == ROAD:
    dashes = (((xx // 10) % 2 == 0) & (np.abs(yy - h / 2) < 1.5))[..., None]
    base = np.where(dashes, np.float32([235, 235, 235]),
                    np.float32([95, 95, 100]))
  else:
    raise ValueError(f'No texture for stuff category {category_id}.')
  return np.broadcast_to(base, (h, w, 3)) + noise


def _thing_polygon(category_id: int, box: Tuple[float, float, float, float]
                   ) -> List[Tuple[float, float]]:
  """Vertices of a thing's shape inside box (x0, y0, x1, y1); [] = ellipse."""
  x0, y0, x1, y1 = box
  if category_id == SPORTS_BALL:
    return []
  if category_id == KITE:
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
  if category_id == PERSON:  # A figure: head block on a body.
    w = x1 - x0
    return [(x0 + 0.3 * w, y0), (x0 + 0.7 * w, y0), (x0 + 0.7 * w, y0 + 0.25 * (y1 - y0)),
            (x1, y0 + 0.25 * (y1 - y0)), (x1, y1), (x0, y1),
            (x0, y0 + 0.25 * (y1 - y0)), (x0 + 0.3 * w, y0 + 0.25 * (y1 - y0))]
  if category_id == CAR:  # A body with a cabin on top.
    w, h = x1 - x0, y1 - y0
    return [(x0, y0 + 0.4 * h), (x0 + 0.25 * w, y0 + 0.4 * h), (x0 + 0.35 * w, y0),
            (x0 + 0.7 * w, y0), (x0 + 0.8 * w, y0 + 0.4 * h), (x1, y0 + 0.4 * h),
            (x1, y1), (x0, y1)]
  raise ValueError(f'No shape for thing category {category_id}.')


def _thing_box(rng: np.random.Generator, category_id: int,
               size: int) -> Tuple[float, float, float, float]:
  """A random box for a thing, with the aspect ratio of its shape."""
  extent = rng.uniform(0.16, 0.34) * size
  aspect = {PERSON: 0.5, CAR: 1.8, SPORTS_BALL: 1.0, KITE: 0.8}[category_id]
  w = extent * np.sqrt(aspect)
  h = extent / np.sqrt(aspect)
  x0 = rng.uniform(0, size - w)
  y0 = rng.uniform(0, size - h)
  return (x0, y0, x0 + w, y0 + h)


def _box_overlap(a, b) -> float:
  """Intersection area over the smaller box's area."""
  iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
  ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
  smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
  return iw * ih / smaller


def render_image(rng: np.random.Generator, size: int
                 ) -> Tuple[np.ndarray, np.ndarray, Dict[int, int]]:
  """Draws one sample image.

  Returns:
    (rgb uint8 [S, S, 3], segment index map int32 [S, S] with 0 = void,
    {segment index: COCO category id}).
  """
  image = np.zeros((size, size, 3), np.float32)
  segments = np.zeros((size, size), np.int32)
  categories: Dict[int, int] = {}

  horizon = int(rng.uniform(0.35, 0.65) * size)
  for index, (rows, choices) in enumerate(
      ((slice(0, horizon), UPPER_STUFF), (slice(horizon, size), LOWER_STUFF)), 1):
    category_id = int(rng.choice(choices))
    height = rows.stop - rows.start
    image[rows] = _texture(rng, category_id, (height, size))
    segments[rows] = index
    categories[index] = category_id

  canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
  id_canvas = Image.fromarray(segments, mode='I')
  draw, id_draw = ImageDraw.Draw(canvas), ImageDraw.Draw(id_canvas)
  boxes: List[Tuple[float, float, float, float]] = []
  for _ in range(int(rng.integers(MIN_THINGS, MAX_THINGS + 1))):
    category_id = int(rng.choice(THING_CATEGORIES))
    for _ in range(30):  # Rejection-sample a box that barely overlaps others.
      box = _thing_box(rng, category_id, size)
      if all(_box_overlap(box, other) < 0.25 for other in boxes):
        break
    else:
      continue
    boxes.append(box)
    index = len(categories) + 1
    categories[index] = category_id
    colour = tuple(int(c) for c in np.clip(
        np.array(_THING_COLOURS[category_id]) + rng.integers(-20, 21, 3), 0, 255))
    polygon = _thing_polygon(category_id, box)
    if polygon:
      draw.polygon(polygon, fill=colour)
      id_draw.polygon(polygon, fill=index)
    else:
      draw.ellipse(box, fill=colour)
      id_draw.ellipse(box, fill=index)

  rgb = np.asarray(canvas, np.float32) + rng.normal(0.0, 3.0, (size, size, 3))
  segments = np.asarray(id_canvas, np.int32)
  present = set(np.unique(segments).tolist())
  categories = {k: v for k, v in categories.items() if k in present}
  return np.clip(rgb, 0, 255).astype(np.uint8), segments, categories


def _segment_info(mask: np.ndarray, segment_id: int, category_id: int) -> dict:
  ys, xs = np.nonzero(mask)
  x0, y0 = int(xs.min()), int(ys.min())
  return {
      'id': segment_id,
      'category_id': category_id,
      'iscrowd': 0,
      'area': int(mask.sum()),
      'bbox': [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
  }


def write_split(coco_dir: pathlib.Path, split: str, num_images: int,
                image_size: int, seed: int, first_image_id: int,
                categories: Sequence[dict],
                category_swap: Optional[Mapping[int, int]] = None
                ) -> SplitFiles:
  """Writes one split (images, PNGs, JSON) and returns its file layout.

  `category_swap` relabels segments ({drawn category id: labelled id}): data
  whose category mix drifted, for the drift gate's tests and calibration.
  """
  category_swap = dict(category_swap or {})
  files = split_files(coco_dir, split)
  for directory in (files.image_dir, files.panoptic_dir,
                    files.annotations_file.parent):
    directory.mkdir(parents=True, exist_ok=True)
  rng = np.random.default_rng(seed)
  images, annotations = [], []
  used_ids = set()
  for offset in range(num_images):
    image_id = first_image_id + offset
    rgb, segments, segment_categories = render_image(rng, image_size)
    id_map = np.zeros_like(segments, np.uint32)
    segments_info = []
    for index, category_id in sorted(segment_categories.items()):
      segment_id = 0
      while segment_id == 0 or segment_id in used_ids:
        segment_id = int(rng.integers(1, 256**3))
      used_ids.add(segment_id)
      mask = segments == index
      id_map[mask] = segment_id
      segments_info.append(_segment_info(
          mask, segment_id, category_swap.get(category_id, category_id)))
    stem = f'{image_id:012d}'
    Image.fromarray(rgb).save(files.image_dir / f'{stem}.jpg', quality=95)
    Image.fromarray(encode_segment_ids(id_map)).save(
        files.panoptic_dir / f'{stem}.png')
    images.append({'id': image_id, 'file_name': f'{stem}.jpg',
                   'height': image_size, 'width': image_size})
    annotations.append({'image_id': image_id, 'file_name': f'{stem}.png',
                        'segments_info': segments_info})
  files.annotations_file.write_text(json.dumps(
      {'images': images, 'annotations': annotations,
       'categories': list(categories)}))
  return files


def make_sample(output_dir: pathlib.Path, num_train: int = 64, num_val: int = 16,
                image_size: int = 128, seed: int = 0,
                category_swap: Optional[Mapping[int, int]] = None
                ) -> Dict[str, SplitFiles]:
  """Writes the synthetic COCO panoptic sample under `output_dir`/coco
  (`category_swap`: see `write_split`).

  Returns:
    {'train': SplitFiles, 'val': SplitFiles}.
  """
  if num_train < 1 or num_val < 1:
    raise ValueError('--num-train and --num-val must be at least 1.')
  if image_size < 32:
    raise ValueError(f'--image-size must be at least 32, got {image_size}.')
  categories = load_categories()
  coco_dir = pathlib.Path(output_dir) / 'coco'
  return {
      'train': write_split(coco_dir, 'train', num_train, image_size, seed,
                           first_image_id=1, categories=categories,
                           category_swap=category_swap),
      'val': write_split(coco_dir, 'val', num_val, image_size, seed + 1,
                         first_image_id=1_000_001, categories=categories,
                         category_swap=category_swap),
  }


def make_sample_tfrecords(output_dir: pathlib.Path, num_train: int = 64,
                          num_val: int = 16, image_size: int = 128,
                          seed: int = 0,
                          category_swap: Optional[Mapping[int, int]] = None
                          ) -> pathlib.Path:
  """Writes the sample and converts it with TFMG's converter
  (`category_swap`: see `write_split`).

  Returns:
    The directory holding `train-*.tfrecord` and `val-*.tfrecord`.
  """
  output_dir = pathlib.Path(output_dir)
  splits = make_sample(output_dir, num_train, num_val, image_size, seed,
                       category_swap)
  record_dir = output_dir / 'tfrecords'
  for split, files in splits.items():
    coco_conversion.convert_coco_panoptic(
        files.image_dir, files.annotations_file, files.panoptic_dir,
        record_dir / split)
  return record_dir
