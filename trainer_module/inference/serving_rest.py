"""TF Serving's REST predict API, row format, answered by a loaded SavedModel.

What the prebuilt Vertex AI TensorFlow prediction containers (TF Serving)
do with `POST .../models/NAME:predict` and no signature name, so that a
request body can be checked locally against the pushed model:

* `{"instances": [...]}` runs the `serving_default` signature on the batch
  of all instances. A signature with one input takes each instance as that
  input's value; with several, each instance is an object keyed by input
  name. A value `{"b64": "..."}` is base64-decoded bytes (string inputs).
* The answer is `{"predictions": [...]}`, one entry per instance: the
  output's value when the signature has one output, else an object keyed by
  output name. A string output whose name ends in `_bytes` is written as
  `{"b64": "..."}`; the other strings are decoded as UTF-8.
"""

import base64
import binascii
from typing import Any, Dict, List, Mapping

import numpy as np

DEFAULT_SIGNATURE = 'serving_default'
B64 = 'b64'


class RequestError(ValueError):
  """A request body TF Serving would refuse (the message says why)."""


def _is_b64(value: Any) -> bool:
  return isinstance(value, dict) and set(value) == {B64}


def _decode_value(value: Any, where: str) -> Any:
  if _is_b64(value):
    try:
      return base64.b64decode(value[B64], validate=True)
    except (binascii.Error, TypeError) as error:
      raise RequestError(f'{where}: "b64" is not base64 ({error})') from None
  if isinstance(value, list):
    return [_decode_value(item, where) for item in value]
  if isinstance(value, dict):
    raise RequestError(f'{where}: an object other than {{"b64": ...}}')
  return value


def _inputs(body: Mapping[str, Any], input_names: List[str]
            ) -> Dict[str, List[Any]]:
  if not isinstance(body, Mapping) or 'instances' not in body:
    raise RequestError('the request body has no "instances" list')
  instances = body['instances']
  if not isinstance(instances, list) or not instances:
    raise RequestError('"instances" must be a non-empty list')
  columns = {name: [] for name in input_names}
  for index, instance in enumerate(instances):
    where = f'instances[{index}]'
    if isinstance(instance, dict) and not _is_b64(instance):
      if set(instance) != set(input_names):
        raise RequestError(f'{where} has keys {sorted(instance)}, the '
                           f'signature takes {sorted(input_names)}')
      for name in input_names:
        columns[name].append(_decode_value(instance[name], where))
    elif len(input_names) == 1:
      columns[input_names[0]].append(_decode_value(instance, where))
    else:
      raise RequestError(f'{where} must be an object keyed by '
                         f'{sorted(input_names)}')
  return columns


def _json_value(name: str, value: Any) -> Any:
  if isinstance(value, np.ndarray):
    return [_json_value(name, item) for item in value]
  if isinstance(value, bytes):
    if name.endswith('_bytes'):
      return {B64: base64.b64encode(value).decode('ascii')}
    return value.decode('utf-8')
  return value.item() if isinstance(value, np.generic) else value


def predict(saved_model: Any, body: Mapping[str, Any],
            signature_name: str = DEFAULT_SIGNATURE) -> Dict[str, Any]:
  """The row-format answer of `saved_model` (a `tf.saved_model.load`
  result) to a predict request body (parsed JSON).

  Raises:
    RequestError: the body is not a row-format request for the signature.
  """
  import tensorflow as tf
  signature = saved_model.signatures[signature_name]
  specs = signature.structured_input_signature[1]
  columns = _inputs(body, sorted(specs))
  outputs = signature(**{name: tf.constant(values, specs[name].dtype)
                         for name, values in columns.items()})
  outputs = {name: value.numpy() for name, value in outputs.items()}
  batch = len(body['instances'])
  for name, value in outputs.items():
    if value.shape[:1] != (batch,):
      raise RequestError(f'output {name} has shape {value.shape}, not '
                         f'[{batch}, ...]: the row format needs a batch axis')
  predictions = []
  for index in range(batch):
    row = {name: _json_value(name, value[index])
           for name, value in outputs.items()}
    predictions.append(next(iter(row.values())) if len(row) == 1 else row)
  return {'predictions': predictions}
