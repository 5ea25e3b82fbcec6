"""Pusher executor that never pushes the same model twice.

A rerun with unchanged inputs and caching reuses the Trainer's model, but the
Evaluator runs again (its baseline, the last blessed model, is now that same
model), blesses it again and TFX's Pusher would copy it as one more version.
This executor records, in each version it pushes, the model artifact it came
from (`SOURCE_FILE`), and skips a model that a version already holds: the
`pushed_model` artifact is then marked not pushed, with the custom property
`already_pushed_as` naming that version.
"""

import os
from typing import Any, Dict, List, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils
from tfx.types import standard_component_specs
from tfx.utils import proto_utils

SOURCE_FILE = 'SOURCE_MODEL'
ALREADY_PUSHED_PROPERTY = 'already_pushed_as'


def _filesystem_base(exec_properties: Dict[str, Any]) -> Optional[str]:
  destination = pusher_pb2.PushDestination()
  proto_utils.json_to_proto(
      exec_properties[standard_component_specs.PUSH_DESTINATION_KEY],
      destination)
  if destination.WhichOneof('destination') != 'filesystem':
    return None
  return destination.filesystem.base_directory


def version_holding(base_directory: str, model_path: str) -> Optional[str]:
  """The pushed version directory whose SOURCE_FILE names `model_path`."""
  if not fileio.isdir(base_directory):
    return None
  for name in sorted(fileio.listdir(base_directory)):
    source = os.path.join(base_directory, name.rstrip('/'), SOURCE_FILE)
    if fileio.exists(source):
      with fileio.open(source, 'r') as f:
        if f.read().strip() == model_path:
          return os.path.join(base_directory, name.rstrip('/'))
  return None


class Executor(pusher_executor.Executor):
  """TFX's filesystem Pusher, plus: a model already pushed is not pushed
  again."""

  def Do(self, input_dict: Dict[str, List[types.Artifact]],
         output_dict: Dict[str, List[types.Artifact]],
         exec_properties: Dict[str, Any]) -> None:
    base_directory = _filesystem_base(exec_properties)
    if base_directory is None or not self.CheckBlessing(input_dict):
      super().Do(input_dict, output_dict, exec_properties)
      return
    model_path = self.GetModelPath(input_dict)
    model_push = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.PUSHED_MODEL_KEY])
    previous = version_holding(base_directory, model_path)
    if previous:
      logging.info('Model %s was already pushed as %s; not pushing it again.',
                   model_path, previous)
      self._MarkNotPushed(model_push)
      model_push.set_string_custom_property(ALREADY_PUSHED_PROPERTY, previous)
      return
    super().Do(input_dict, output_dict, exec_properties)
    destination = model_push.get_string_custom_property('pushed_destination')
    if destination:
      with fileio.open(os.path.join(destination, SOURCE_FILE), 'w') as f:
        f.write(model_path)
