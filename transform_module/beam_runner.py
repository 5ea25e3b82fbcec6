"""Runs the transform with tf.Transform on Beam outside TFX (tests, benchmark).

The pipeline mirrors what TFX's Transform component does with this module:
read raw TFMG tf.Examples through TFXIO, `AnalyzeAndTransformDataset`, write
the transform graph and the transformed examples as gzipped TFRecords.
"""

import functools
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import apache_beam as beam
from apache_beam.options import pipeline_options
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata
from tensorflow_transform.tf_metadata import metadata_io
from tensorflow_transform.tf_metadata import schema_utils
from tfx_bsl.public import tfxio

from transform_module import encoding
from transform_module import preprocessing

TRANSFORMED_EXAMPLES_PREFIX = 'transformed_examples'
# In-process DirectRunner: fastest for tests on a few examples.
IN_MEMORY_BEAM_ARGS = ('--runner=DirectRunner', '--direct_num_workers=1',
                       '--direct_running_mode=in_memory')


def run_transform(raw_file_pattern: str, output_dir: str,
                  custom_config: Optional[Mapping[str, Any]] = None,
                  beam_args: Sequence[str] = IN_MEMORY_BEAM_ARGS) -> None:
  """Analyzes and transforms raw TFMG records with `preprocessing_fn`.

  Writes `output_dir/transform_fn`, `output_dir/transformed_metadata` and, as
  TFX's Transform does, the raw metadata `output_dir/metadata` (readable with
  `tft.TFTransformOutput(output_dir)`, whose `raw_feature_spec()` the
  Trainer's on-the-fly path uses), and gzipped TFRecords of transformed
  tf.Examples named `output_dir/transformed_examples-*.gz`.

  Args:
    raw_file_pattern: glob of TFRecord files of raw tf.Examples.
    output_dir: where to write the outputs.
    custom_config: passed to `preprocessing_fn` (output_size,
      num_segment_slots).
    beam_args: Beam pipeline flags.
  """
  schema = schema_utils.schema_from_feature_spec(
      preprocessing.raw_feature_spec())
  raw_tfxio = tfxio.TFExampleRecord(
      file_pattern=raw_file_pattern, schema=schema,
      telemetry_descriptors=['maskformer_tfx', 'transform'])
  options = pipeline_options.PipelineOptions(list(beam_args))
  with beam.Pipeline(options=options) as pipeline:
    with tft_beam.Context(temp_dir=os.path.join(output_dir, 'tmp')):
      raw_data = pipeline | 'ReadRaw' >> raw_tfxio.BeamSource()
      transformed_dataset, transform_fn = (
          (raw_data, raw_tfxio.TensorAdapterConfig())
          | 'AnalyzeAndTransform' >> tft_beam.AnalyzeAndTransformDataset(
              functools.partial(preprocessing.preprocessing_fn,
                                custom_config=custom_config),
              output_record_batches=True))
      _ = (transformed_dataset
           | 'Encode' >> tft_beam.EncodeTransformedDataset()
           | 'WriteExamples' >> beam.io.WriteToTFRecord(
               os.path.join(output_dir, TRANSFORMED_EXAMPLES_PREFIX),
               file_name_suffix='.gz'))
      _ = transform_fn | 'WriteTransformFn' >> tft_beam.WriteTransformFn(
          output_dir)
  metadata_io.write_metadata(
      dataset_metadata.DatasetMetadata(schema),
      os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))


def transformed_example_files(output_dir: str) -> Sequence[str]:
  """The gzipped TFRecord files written by `run_transform`."""
  return sorted(tf.io.gfile.glob(
      os.path.join(output_dir, TRANSFORMED_EXAMPLES_PREFIX + '*')))


def read_transformed_examples(output_dir: str
                              ) -> Dict[str, Dict[str, np.ndarray]]:
  """Parses the transformed examples of `run_transform`, keyed by source_id.

  The encoded image and maps are decoded (`encoding.decode_transformed`):
  `image` uint8 [S, S, 3], the label maps int32 [S, S], plus the derived
  `pixel_valid`.
  """
  spec = tft.TFTransformOutput(output_dir).transformed_feature_spec()
  dataset = tf.data.TFRecordDataset(transformed_example_files(output_dir),
                                    compression_type='GZIP')
  result = {}
  for record in dataset:
    parsed = encoding.decode_transformed(
        tf.io.parse_single_example(record, spec))
    values = {key: value.numpy() for key, value in parsed.items()}
    result[values['source_id'].decode()] = values
  return result
