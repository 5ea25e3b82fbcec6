"""The rehearsal's stand-in for Vertex ML Metadata: artifacts and queries.

Vertex AI Pipelines records every task's output artifacts (name, schema
title, URI, metadata) in the project's ML Metadata store, and runs a
resolver task (TFX's latest-blessed-model resolver compiles to two) as a
query over them: its `outputArtifactQueries` filter, e.g.
`schema_title="tfx.ModelBlessing" AND state=LIVE AND
metadata.blessed.number_value=1`, returning the newest match. Here the
store is one JSON file under the rehearsal directory, so a rehearsal sees
the artifacts of earlier rehearsals under the same directory (the first one
sees none: no baseline model).
"""

import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional

from runners.vertex_rehearsal.spec import RehearsalError

ARTIFACT_NAME_PREFIX = ('projects/rehearsal/locations/local/metadataStores/'
                        'default/artifacts/')

_CLAUSE_RES = (
    ('schema_title', re.compile(r'schema_title="(?P<value>[^"]*)"')),
    ('state', re.compile(r'state=(?P<value>[A-Z_]+)')),
    ('name', re.compile(r'name="(?P<value>[^"]*)"')),
    ('number', re.compile(
        r'metadata\.(?P<key>[\w-]+)\.number_value=(?P<value>[-0-9.eE+]+)')),
    ('string', re.compile(
        r'metadata\.(?P<key>[\w-]+)\.string_value="(?P<value>[^"]*)"')),
)


def schema_title(artifact_type: Mapping[str, Any]) -> str:
  """The schema title of an artifact type (`schemaTitle` or the `title:`
  line of its `instanceSchema`)."""
  if 'schemaTitle' in artifact_type:
    return artifact_type['schemaTitle']
  match = re.search(r'^title:\s*(\S+)', artifact_type.get('instanceSchema', ''),
                    re.M)
  return match.group(1) if match else ''


class MetadataStore:
  """Artifacts of rehearsals under one directory, in creation order."""

  def __init__(self, path: str):
    self._path = path
    self._artifacts: List[Dict[str, Any]] = []
    self._next_id = 1
    if os.path.exists(path):
      with open(path, encoding='utf-8') as f:
        saved = json.load(f)
      self._artifacts = saved['artifacts']
      self._next_id = saved['next_id']

  def new_name(self) -> str:
    """A new artifact resource name, as Vertex ML Metadata names them."""
    name = f'{ARTIFACT_NAME_PREFIX}{self._next_id}'
    self._next_id += 1
    self._save()
    return name

  def record(self, artifacts: List[Mapping[str, Any]]) -> None:
    """Records artifacts a task produced (executor-input JSON form)."""
    for artifact in artifacts:
      self._artifacts.append({
          'name': artifact['name'], 'uri': artifact['uri'],
          'type': artifact['type'],
          'schema_title': schema_title(artifact['type']),
          'state': 'LIVE', 'metadata': dict(artifact.get('metadata', {}))})
    self._save()

  def query(self, filter_text: str, where: str) -> Optional[Dict[str, Any]]:
    """The newest artifact matching a resolver filter, or None.

    Raises:
      RehearsalError: a filter clause this stand-in does not evaluate.
    """
    clauses = [c.strip() for c in filter_text.split(' AND ') if c.strip()]
    tests = []
    for clause in clauses:
      for kind, pattern in _CLAUSE_RES:
        match = pattern.fullmatch(clause)
        if match:
          tests.append((kind, match.groupdict()))
          break
      else:
        raise RehearsalError(f'{where}: cannot evaluate the ML Metadata filter '
                             f'clause {clause!r}.')
    for artifact in reversed(self._artifacts):
      if all(_matches(artifact, kind, groups) for kind, groups in tests):
        return {key: artifact[key] for key in ('name', 'type', 'uri',
                                               'metadata')}
    return None

  def _save(self) -> None:
    os.makedirs(os.path.dirname(self._path), exist_ok=True)
    with open(self._path, 'w', encoding='utf-8') as f:
      json.dump({'next_id': self._next_id, 'artifacts': self._artifacts}, f,
                indent=1)


def _matches(artifact: Mapping[str, Any], kind: str,
             groups: Mapping[str, str]) -> bool:
  value = groups['value']
  if kind in ('schema_title', 'state', 'name'):
    return artifact[kind] == value
  actual = artifact['metadata'].get(groups['key'])
  if kind == 'number':
    return isinstance(actual, (int, float)) and float(actual) == float(value)
  return actual == value
