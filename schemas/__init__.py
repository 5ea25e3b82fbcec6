"""Schema and category files shipped with the package.

`panoptic_coco_categories.json` holds the 133 COCO panoptic categories
(80 things, 53 stuff); a category's contiguous class id is its position in it.
`raw_schema.pbtxt` is the curated TFDV schema of the raw TFMG records;
`panoptic_drift_schema.pbtxt` holds the drift limits of the panoptic
statistics (tfx_pipeline.drift).
"""

import functools
import importlib.resources
import json
from typing import List

CATEGORIES_FILE = 'panoptic_coco_categories.json'
RAW_SCHEMA_FILE = 'raw_schema.pbtxt'
DRIFT_SCHEMA_FILE = 'panoptic_drift_schema.pbtxt'


def schema_path(name: str) -> str:
  """Filesystem path of a file shipped in this package."""
  return str(importlib.resources.files(__name__) / name)


@functools.lru_cache(maxsize=None)
def _categories_json() -> str:
  return (importlib.resources.files(__name__) / CATEGORIES_FILE).read_text()


def load_categories() -> List[dict]:
  """The COCO panoptic categories (dicts with id, name, isthing, color, ...)."""
  return json.loads(_categories_json())
