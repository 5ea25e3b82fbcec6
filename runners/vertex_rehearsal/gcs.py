"""`gs://BUCKET/PATH` -> `DIR/BUCKET/PATH`: Cloud Storage stood in by a directory."""

import dataclasses
import os
import re
from typing import Any, List, Tuple

GCS_PREFIX = 'gs://'
_GCS_URI_RE = re.compile(r'gs://[^\s"\'\\,;]*')


@dataclasses.dataclass(frozen=True)
class GcsMapping:
  """Maps every gs:// location to a local directory tree.

  Attributes:
    root: local directory that stands for Cloud Storage; bucket B is
      `root/B`.
  """
  root: str

  def __post_init__(self):
    object.__setattr__(self, 'root', os.path.abspath(self.root))

  def local_path(self, uri: str) -> str:
    """The local path of one gs:// URI (other strings are returned as is)."""
    if not uri.startswith(GCS_PREFIX):
      return uri
    return os.path.join(self.root, uri[len(GCS_PREFIX):])

  def map_text(self, text: str) -> Tuple[str, List[Tuple[str, str]]]:
    """`text` with every gs:// location in it mapped (also inside JSON).

    Returns:
      The mapped text and the (gs:// URI, local path) pairs, in order.
    """
    pairs = []

    def _replace(match: 're.Match[str]') -> str:
      local = self.local_path(match.group(0))
      pairs.append((match.group(0), local))
      return local

    return _GCS_URI_RE.sub(_replace, text), pairs

  def map_value(self, value: Any) -> Tuple[Any, List[Tuple[str, str]]]:
    """Like `map_text` for strings; other values are returned unchanged."""
    if isinstance(value, str):
      return self.map_text(value)
    return value, []
