"""A one-component pipeline that records which Keras `tf.keras` is inside a
pipeline component. Run as `python -m tests.keras_probe PIPELINE_ROOT OUT`."""

import sys

import tfx_pipeline  # noqa: F401  (before TensorFlow: selects Keras 2)
from tfx import v1 as tfx


@tfx.dsl.components.component
def KerasProbe(output_file: tfx.dsl.components.Parameter[str]) -> None:
  """Writes `tf.keras`'s module name and whether it is tf_keras."""
  import tensorflow as tf
  import tf_keras
  with open(output_file, 'w') as f:
    f.write(f'{tf.keras.__name__} {tf.keras.layers.Dense is tf_keras.layers.Dense}')


def main(pipeline_root: str, output_file: str) -> None:
  pipeline = tfx.dsl.Pipeline(
      pipeline_name='keras-probe', pipeline_root=pipeline_root,
      components=[KerasProbe(output_file=output_file)],
      metadata_connection_config=(
          tfx.orchestration.metadata.sqlite_metadata_connection_config(
              f'{pipeline_root}/metadata.sqlite')))
  tfx.orchestration.LocalDagRunner().run(pipeline)


if __name__ == '__main__':
  main(sys.argv[1], sys.argv[2])
