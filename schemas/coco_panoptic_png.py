"""COCO panoptic PNG colours <-> segment ids (a fact of the COCO format).

A COCO panoptic PNG stores each pixel's segment id in its colour:
id = R + 256·G + 256²·B (0 is void). Numpy only, so every layer can use it.
"""

import numpy as np


def encode_segment_ids(ids: np.ndarray) -> np.ndarray:
  """COCO panoptic PNG colours (uint8 [..., 3]) for segment ids."""
  ids = np.asarray(ids).astype(np.uint32)
  return np.stack([ids % 256, ids // 256 % 256, ids // 256**2 % 256],
                  axis=-1).astype(np.uint8)


def decode_segment_ids(rgb: np.ndarray) -> np.ndarray:
  """Segment ids (uint32 [...]) of a COCO panoptic PNG's colours [..., 3]."""
  rgb = np.asarray(rgb).astype(np.uint32)
  return rgb[..., 0] + 256 * rgb[..., 1] + 256**2 * rgb[..., 2]
