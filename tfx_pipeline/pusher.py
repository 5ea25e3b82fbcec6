"""Pusher executor: atomic versions, never the same model twice.

TFX's filesystem Pusher copies a model straight into its numeric version
directory (`<base>/<unix time>`), so a model server polling the base
directory can load a half-copied version, and two pushes in the same second
share one directory. This executor:

* copies the model into `<base>/.tmp-<version>-<random>` (TF Serving loads
  only all-digit directory names) and then renames it to `<base>/<version>`.
  A local rename is atomic and fails if the version exists, so versions
  never collide: the next free version is taken instead. Where a rename is
  a copy (gs://), the version directory is filled from the temporary copy
  with `saved_model.pb`, the file model servers wait for, copied last.
* removes, before it pushes, what an interrupted push left behind: temporary
  copies, and version directories of its own (`SOURCE_FILE`) that have no
  `saved_model.pb` (a copy interrupted where a rename is a copy). One base
  directory is therefore pushed to by one pipeline at a time.
* records in each version the model artifact it came from (`SOURCE_FILE`)
  and skips a model that a version already holds: a rerun with caching
  reuses the Trainer's model and the Evaluator blesses it again. The
  `pushed_model` artifact is then marked not pushed, with the custom
  property `already_pushed_as` naming that version.

The `pushed_model` artifact's properties are TFX's: `pushed`,
`pushed_destination` (the version directory) and `pushed_version`.
"""

import os
import time
import uuid
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx.utils import proto_utils

SOURCE_FILE = 'SOURCE_MODEL'
ALREADY_PUSHED_PROPERTY = 'already_pushed_as'
# Set by the Vertex Pusher: the endpoint the pushed version was deployed to.
ENDPOINT_PROPERTY = 'vertex_endpoint'
# Prefix of the temporary copies (a name model servers do not load).
TEMP_PREFIX = '.tmp-'
# The file model servers take as the sign that a SavedModel is complete.
SAVED_MODEL_FILE = 'saved_model.pb'
# Versions tried after the current time before giving up.
MAX_VERSION_TRIES = 100


def filesystem_destination(exec_properties: Dict[str, Any]
                            ) -> Optional[pusher_pb2.PushDestination.Filesystem]:
  destination = pusher_pb2.PushDestination()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
      destination)
  if destination.WhichOneof('destination') != 'filesystem':
    return None
  return destination.filesystem


def renames_atomically(base_directory: str) -> bool:
  """Whether a directory rename under `base_directory` is one atomic step
  (a local file system) rather than a copy (gs:// and other object
  stores)."""
  return '://' not in base_directory


def _entries(base_directory: str) -> List[str]:
  if not fileio.isdir(base_directory):
    return []
  return sorted(name.rstrip('/') for name in fileio.listdir(base_directory))


def _is_complete_version(path: str) -> bool:
  return fileio.exists(os.path.join(path, SAVED_MODEL_FILE))


def remove_interrupted_pushes(base_directory: str) -> List[str]:
  """Deletes temporary copies and this Pusher's version directories without
  `saved_model.pb` under `base_directory`; returns what it deleted."""
  removed = []
  for name in _entries(base_directory):
    path = os.path.join(base_directory, name)
    partial = (name.isdigit() and
               fileio.exists(os.path.join(path, SOURCE_FILE)) and
               not _is_complete_version(path))
    if name.startswith(TEMP_PREFIX) or partial:
      logging.warning('Removing %s, left by an interrupted push.', path)
      fileio.rmtree(path)
      removed.append(path)
  return removed


def version_holding(base_directory: str, model_path: str) -> Optional[str]:
  """The complete version directory whose SOURCE_FILE names `model_path`."""
  for name in _entries(base_directory):
    path = os.path.join(base_directory, name)
    source = os.path.join(path, SOURCE_FILE)
    if name.isdigit() and fileio.exists(source) and _is_complete_version(path):
      with fileio.open(source, 'r') as f:
        if f.read().strip() == model_path:
          return path
  return None


def _copy_model(model_path: str, target: str, source_text: str) -> None:
  """Copies the SavedModel in `model_path` to a new directory `target`:
  SOURCE_FILE first, `saved_model.pb` last. (io_utils.copy_dir would delete
  `target` before copying.)"""
  model_path = model_path.rstrip('/')
  fileio.makedirs(target)
  with fileio.open(os.path.join(target, SOURCE_FILE), 'w') as f:
    f.write(source_text)
  for directory, _, files in fileio.walk(model_path):
    relative = os.path.relpath(directory, model_path)
    fileio.makedirs(os.path.normpath(os.path.join(target, relative)))
    for name in files:
      if relative == '.' and name in (SAVED_MODEL_FILE, SOURCE_FILE):
        continue
      fileio.copy(os.path.join(directory, name),
                  os.path.normpath(os.path.join(target, relative, name)))
  saved_model = os.path.join(model_path, SAVED_MODEL_FILE)
  if fileio.exists(saved_model):
    fileio.copy(saved_model, os.path.join(target, SAVED_MODEL_FILE))


def _free_version(base_directory: str, first: int) -> int:
  taken = set(_entries(base_directory))
  version = first
  while str(version) in taken:
    version += 1
  return version


def push_version(model_path: str, base_directory: str,
                 now: Optional[float] = None) -> str:
  """Copies the model in `model_path` to a new version directory under
  `base_directory` that appears complete or not at all; returns the
  version (the current Unix time, or the next free number)."""
  version = _free_version(base_directory, int(time.time() if now is None
                                              else now))
  temp = os.path.join(base_directory,
                      f'{TEMP_PREFIX}{version}-{uuid.uuid4().hex[:8]}')
  _copy_model(model_path, temp, model_path)
  try:
    for _ in range(MAX_VERSION_TRIES):
      target = os.path.join(base_directory, str(version))
      if renames_atomically(base_directory):
        try:
          os.rename(temp, target)  # Fails if `target` holds a version.
          return str(version)
        except OSError:
          if not os.path.isdir(target):
            raise
      elif not fileio.exists(target):
        _copy_model(temp, target, model_path)
        fileio.rmtree(temp)
        return str(version)
      version = _free_version(base_directory, version + 1)
    raise RuntimeError(f'No free version directory under {base_directory} '
                       f'after {MAX_VERSION_TRIES} tries.')
  finally:
    if fileio.exists(temp):
      fileio.rmtree(temp)


class Executor(pusher_executor.Executor):
  """TFX's Pusher, with atomic versions on a filesystem destination and
  without pushing a model twice."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    filesystem = filesystem_destination(exec_properties)
    if filesystem is None or not self.CheckBlessing(input_dict):
      super().Do(input_dict, output_dict, exec_properties)
      return
    if filesystem.versioning not in (pusher_pb2.Versioning.AUTO,
                                     pusher_pb2.Versioning.UNIX_TIMESTAMP):
      raise NotImplementedError(
          f'Invalid Versioning {filesystem.versioning}')
    base_directory = filesystem.base_directory
    model_path = self.GetModelPath(input_dict)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    remove_interrupted_pushes(base_directory)
    previous = version_holding(base_directory, model_path)
    if previous:
      logging.info('Model %s was already pushed as %s; not pushing it again.',
                   model_path, previous)
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(ALREADY_PUSHED_PROPERTY, previous)
      return
    version = push_version(model_path, base_directory)
    serving_path = os.path.join(base_directory, version)
    logging.info('Model written to serving path %s.', serving_path)
    # The pushed_model artifact keeps a copy of the model, as TFX's does.
    io_utils.copy_dir(model_path, model_push.uri)
    self._MarkPushed(model_push, pushed_destination=serving_path,
                     pushed_version=version)
