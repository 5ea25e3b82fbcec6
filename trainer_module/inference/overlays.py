"""Panoptic segments as images: the one overlay style (each segment in its
category's colour from the category file, `schemas.load_categories`, things
of one category shifted in shade per instance, blended over the image, white
segment boundaries, void left as the image: `overlay`).

`maskformer-tfx predict` (and through it `evaluate-coco`) and the review
report both draw the model's `serving_default` answer (the COCO panoptic PNG
at the original size, `trainer_module.ops.coco_panoptic_output`) with it, so
their maps and overlays agree pixel for pixel.
"""

from typing import Any, Dict, Mapping, Sequence, Tuple

import numpy as np

# Opacity of segment colours over the image (void pixels keep the image).
OVERLAY_ALPHA = 0.7
# Colour of a category missing from the category file.
UNKNOWN_COLOUR = (128, 128, 128)

Colours = Mapping[int, Tuple[int, int, int]]


def category_colours() -> Dict[int, Tuple[int, int, int]]:
  """{category id: RGB} of the category file."""
  from schemas import load_categories
  return {int(c['id']): tuple(int(v) for v in c['color'])
          for c in load_categories()}


def category_names() -> Dict[int, str]:
  """{category id: name} of the category file."""
  from schemas import load_categories
  return {int(c['id']): c['name'] for c in load_categories()}


def masks_of_segments(ids: np.ndarray,
                      infos: Sequence[Mapping[str, Any]]
                      ) -> Tuple[np.ndarray, np.ndarray]:
  """(category, instance) masks of a segment-id map and its segment infos
  ({id, category_id, isthing}): a thing's instance is its id, stuff's 0."""
  category = np.zeros(ids.shape, np.int64)
  instance = np.zeros(ids.shape, np.int64)
  for info in infos:
    pixels = ids == info['id']
    category[pixels] = info['category_id']
    if info.get('isthing'):
      instance[pixels] = info['id']
  return category, instance


def segment_colours(category_mask: np.ndarray, instance_mask: np.ndarray,
                    colours: Colours) -> Tuple[np.ndarray, np.ndarray]:
  """RGB colours of each pixel's panoptic segment and the segment boundaries.

  A segment is a (category, instance) pair; its colour is the category's,
  shifted per instance so that touching things of a category differ.
  Category 0 (void) is black. Unknown categories are grey.

  Returns:
    (uint8 [H, W, 3] colours, bool [H, W] pixels on a segment boundary).
  """
  category = np.asarray(category_mask).astype(np.int64)
  instance = np.asarray(instance_mask).astype(np.int64)
  colour = np.zeros(category.shape + (3,), np.int64)
  segment_ids = category * (instance.max(initial=0) + 1) + instance
  for segment_id in np.unique(segment_ids):
    pixels = segment_ids == segment_id
    category_id = int(category[pixels][0])
    if category_id == 0:
      continue
    base = np.array(colours.get(category_id, UNKNOWN_COLOUR), np.int64)
    instance_id = int(instance[pixels][0])
    # Up to ±20 per channel: shades of the legend's colour.
    shift = ((np.array([37, -53, 71]) * instance_id) % 41 - 20
             if instance_id else 0)
    colour[pixels] = np.clip(base + shift, 0, 255)
  boundary = np.zeros(category.shape, bool)
  vertical = segment_ids[:-1, :] != segment_ids[1:, :]
  horizontal = segment_ids[:, :-1] != segment_ids[:, 1:]
  boundary[:-1, :] |= vertical
  boundary[1:, :] |= vertical
  boundary[:, :-1] |= horizontal
  boundary[:, 1:] |= horizontal
  return colour.astype(np.uint8), boundary


def overlay(image: np.ndarray, category_mask: np.ndarray,
            instance_mask: np.ndarray, colours: Colours) -> np.ndarray:
  """The image (uint8 [H, W, 3]) with its panoptic segments blended in
  (void left as is) and white segment boundaries, uint8 [H, W, 3]."""
  colour, boundary = segment_colours(category_mask, instance_mask, colours)
  alpha = np.where(np.asarray(category_mask) > 0, OVERLAY_ALPHA,
                   0.0)[..., None]
  blended = image.astype(np.float32) * (1 - alpha) + colour * alpha
  blended[boundary] = 255
  return blended.astype(np.uint8)
