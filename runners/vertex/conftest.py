"""Valid settings for the runners.vertex unit tests."""

from typing import Any, Callable

import pytest

from runners.vertex.settings import VertexSettings


@pytest.fixture
def make_settings() -> Callable[..., VertexSettings]:
  """Valid settings (TPU v5e default), with `changes` applied."""
  def make(**changes: Any) -> VertexSettings:
    values = dict(
        project='maskformer-proj', region='us-central1',
        pipeline_root='gs://maskformer-bucket/pipelines/maskformer',
        data_root='gs://maskformer-bucket/coco/tfrecords',
        image='us-central1-docker.pkg.dev/maskformer-proj/ml/maskformer-tfx:1.0')
    values.update(changes)
    return VertexSettings(**values)
  return make
