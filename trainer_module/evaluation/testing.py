"""Test helpers: random panoptic label maps for the PQ tests and benchmarks.

Ground truth and predictions as [I, H, W] category / instance maps with
things, stuff, void and jittered predictions (`random_panoptic_images`),
their COCO panoptic JSON + PNG files (`write_coco_panoptic`), and TFMA
extracts of them (`extracts_from_label_maps`). Used by
`trainer_module/evaluation/panoptic_quality_test.py`,
`tfx_pipeline/metrics_test.py` and `benchmarks/bench_pq.py`.
"""

import json
from pathlib import Path
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np
from PIL import Image

from schemas import load_categories
from schemas.coco_panoptic_png import encode_segment_ids
from trainer_module.evaluation.panoptic_quality import VOID_CATEGORY_ID

LabelMaps = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def category_ids(categories: Sequence[Mapping[str, Any]],
                  isthing: int) -> np.ndarray:
  return np.array([c["id"] for c in categories if c["isthing"] == isthing])


def _random_box(rng: np.random.Generator, height: int, width: int,
                min_fraction: float,
                max_fraction: float) -> Tuple[int, int, int, int]:
  """Returns (y0, y1, x0, x1) of a random box of the given relative size."""
  box_height = max(1, int(height * rng.uniform(min_fraction, max_fraction)))
  box_width = max(1, int(width * rng.uniform(min_fraction, max_fraction)))
  y0 = int(rng.integers(0, height - box_height + 1))
  x0 = int(rng.integers(0, width - box_width + 1))
  return y0, y0 + box_height, x0, x0 + box_width


def _jitter_box(rng: np.random.Generator, box: Tuple[int, int, int, int],
                height: int, width: int,
                amount: float) -> Tuple[int, int, int, int]:
  """Moves every edge of a box by up to `amount` of the box size."""
  y0, y1, x0, x1 = box
  dy = max(1, int(amount * (y1 - y0)))
  dx = max(1, int(amount * (x1 - x0)))
  y0 = int(np.clip(y0 + rng.integers(-dy, dy + 1), 0, height - 1))
  x0 = int(np.clip(x0 + rng.integers(-dx, dx + 1), 0, width - 1))
  y1 = int(np.clip(y1 + rng.integers(-dy, dy + 1), y0 + 1, height))
  x1 = int(np.clip(x1 + rng.integers(-dx, dx + 1), x0 + 1, width))
  return y0, y1, x0, x1


def random_panoptic_image(rng: np.random.Generator,
                          categories: Sequence[Mapping[str, Any]],
                          height: int, width: int, num_stuff: int,
                          num_things: int, num_void: int) -> LabelMaps:
  """Returns a random (gt_category, gt_instance, pred_category, pred_instance).

  The ground truth has `num_stuff` stuff bands covering the image, `num_things`
  thing boxes drawn from a few categories (so several instances share a
  category) and `num_void` void boxes. The prediction perturbs it: stuff band
  edges move and some bands change category; each edge of a thing box moves by
  up to 25% of the box size (some pairs fall below IoU 0.5), some things change
  category or disappear; spurious things appear, some lying mostly in
  ground-truth void; some pixels are void; instance ids are renumbered.
  """
  stuff_ids = rng.choice(category_ids(categories, 0), num_stuff + 1,
                         replace=False)
  thing_pool = rng.choice(category_ids(categories, 1),
                          max(1, num_things // 2), replace=False)
  gt_category = np.zeros((height, width), np.int32)
  gt_instance = np.zeros((height, width), np.int32)
  pred_category = np.zeros((height, width), np.int32)
  pred_instance = np.zeros((height, width), np.int32)

  edges = np.sort(rng.choice(np.arange(1, height), num_stuff - 1,
                             replace=False))
  gt_edges = np.concatenate([[0], edges, [height]])
  pred_edges = np.concatenate([[0], np.clip(
      edges + rng.integers(-height // 10, height // 10 + 1, edges.shape), 1,
      height - 1), [height]])
  for band in range(num_stuff):
    gt_category[gt_edges[band]:gt_edges[band + 1]] = stuff_ids[band]
    pred_stuff = stuff_ids[-1] if rng.random() < 0.15 else stuff_ids[band]
    pred_category[pred_edges[band]:pred_edges[band + 1]] = pred_stuff

  next_pred_instance = int(rng.integers(1, 1000))
  for instance in range(1, num_things + 1):
    category = rng.choice(thing_pool)
    y0, y1, x0, x1 = _random_box(rng, height, width, 0.1, 0.4)
    gt_category[y0:y1, x0:x1] = category
    gt_instance[y0:y1, x0:x1] = instance
    if rng.random() < 0.15:
      continue
    if rng.random() < 0.1:
      category = rng.choice(category_ids(categories, 1))
    y0, y1, x0, x1 = _jitter_box(rng, (y0, y1, x0, x1), height, width, 0.25)
    pred_category[y0:y1, x0:x1] = category
    pred_instance[y0:y1, x0:x1] = next_pred_instance
    next_pred_instance += int(rng.integers(1, 5))

  for _ in range(num_void):
    box = _random_box(rng, height, width, 0.1, 0.3)
    gt_category[box[0]:box[1], box[2]:box[3]] = VOID_CATEGORY_ID
    gt_instance[box[0]:box[1], box[2]:box[3]] = 0
    if rng.random() < 0.7:
      # A prediction lying mostly (or, after jitter, partly) in void.
      y0, y1, x0, x1 = _jitter_box(rng, box, height, width, 0.3)
      pred_category[y0:y1, x0:x1] = rng.choice(thing_pool)
      pred_instance[y0:y1, x0:x1] = next_pred_instance
      next_pred_instance += 1

  for _ in range(int(rng.integers(1, 3))):
    y0, y1, x0, x1 = _random_box(rng, height, width, 0.05, 0.2)
    pred_category[y0:y1, x0:x1] = rng.choice(thing_pool)
    pred_instance[y0:y1, x0:x1] = next_pred_instance
    next_pred_instance += 1
  y0, y1, x0, x1 = _random_box(rng, height, width, 0.05, 0.15)
  pred_category[y0:y1, x0:x1] = VOID_CATEGORY_ID
  pred_instance[y0:y1, x0:x1] = 0
  return gt_category, gt_instance, pred_category, pred_instance


def random_panoptic_images(seed: int, num_images: int, height: int, width: int,
                           num_stuff: int, num_things: int,
                           num_void: int) -> LabelMaps:
  """Stacks `random_panoptic_image` label maps to [num_images, H, W]."""
  rng = np.random.default_rng(seed)
  categories = load_categories()
  images = [
      random_panoptic_image(rng, categories, height, width, num_stuff,
                            num_things, num_void) for _ in range(num_images)
  ]
  return tuple(np.stack(maps) for maps in zip(*images))


def write_coco_panoptic(directory: Path, name: str, category: np.ndarray,
                        instance: np.ndarray,
                        categories: Sequence[Mapping[str, Any]],
                        rng: np.random.Generator) -> Path:
  """Writes [I, H, W] label maps as a COCO panoptic JSON + PNG folder.

  Each (category, instance) pair with a non-void category becomes a segment
  with a random id in [1, 2^24) stored as R + 256 G + 256^2 B; void is id 0.

  Returns:
    The JSON path; the PNGs are in the folder of the same name without .json.
  """
  png_dir = directory / name
  png_dir.mkdir(parents=True)
  annotations = []
  for image_id, (image_category,
                 image_instance) in enumerate(zip(category, instance)):
    key = image_category.astype(np.int64) * 2**31 + image_instance
    pairs, pixel_pair = np.unique(key, return_inverse=True)
    segment_ids = rng.choice(2**24 - 1, pairs.size, replace=False) + 1
    segment_ids[pairs // 2**31 == VOID_CATEGORY_ID] = 0
    id_map = segment_ids[pixel_pair.reshape(image_category.shape)]
    rgb = encode_segment_ids(id_map)
    file_name = f"{image_id:06d}.png"
    Image.fromarray(rgb).save(png_dir / file_name)
    areas = np.bincount(pixel_pair.reshape(-1), minlength=pairs.size)
    segments_info = [{
        "id": int(segment_id),
        "category_id": int(pair // 2**31),
        "iscrowd": 0,
        "area": int(area),
    } for pair, segment_id, area in zip(pairs, segment_ids, areas)
                     if segment_id != 0]
    annotations.append({
        "image_id": image_id,
        "file_name": file_name,
        "segments_info": segments_info,
    })
  json_path = directory / f"{name}.json"
  json_path.write_text(
      json.dumps({
          "annotations": annotations,
          "categories": [dict(c) for c in categories],
      }))
  return json_path


def extracts_from_label_maps(label_maps: LabelMaps, layouts: Sequence[str]
                            ) -> List[Dict[str, Any]]:
  """Per-example TFMA extracts (labels/predictions dicts of masks).

  Args:
    label_maps: [I, H, W] gt_category, gt_instance, pred_category,
      pred_instance.
    layouts: cycled over the examples: "hw" ([H, W]), "batch" ([1, H, W]) or
      "flat" ([H * W]).
  """
  gt_category, gt_instance, pred_category, pred_instance = label_maps
  reshape = {
      "hw": lambda a: a,
      "batch": lambda a: a[np.newaxis],
      "flat": lambda a: a.reshape(-1),
  }
  extracts = []
  for index in range(gt_category.shape[0]):
    layout = reshape[layouts[index % len(layouts)]]
    extracts.append({
        "labels": {
            "category_mask": layout(gt_category[index]),
            "instance_mask": layout(gt_instance[index]),
        },
        "predictions": {
            "category_mask": layout(pred_category[index]),
            "instance_mask": layout(pred_instance[index]),
        },
        "example_weights": np.array([1.0], np.float32),
    })
  return extracts
