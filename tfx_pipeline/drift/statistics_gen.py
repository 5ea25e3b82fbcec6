"""PanopticStatisticsGen: TFDV statistics of the panoptic masks' features.

Reads ImportExampleGen's raw examples, derives `panoptic_features.FEATURES`
per example and computes standard TFDV statistics on Beam (so on Dataflow
when deployed), written as StatisticsGen writes them:
`<uri>/Split-<split>/FeatureStats.pb` of an `ExampleStatistics` artifact
that `tfdv.load_stats_binary`, the review report and TFDV's tools read.
"""

import os
from typing import Optional

import apache_beam as beam
import tensorflow_data_validation as tfdv
from tfx import v1 as tfx
from tfx.types import artifact_utils

from tfx_pipeline.drift import panoptic_features

STATISTICS_FILE = 'FeatureStats.pb'
# Rank histograms with a bucket for every one of the 133 categories, so that
# the category distribution TFDV compares is complete.
_RANK_HISTOGRAM_BUCKETS = 1000
_BATCH_SIZE = 256


def stats_options():
  """TFDV's options for the panoptic features: the category and thing/stuff
  ids are categorical (value counts, which the drift schema's Jensen-Shannon
  and L-infinity comparators compare), the others numeric (histograms)."""
  from tensorflow_metadata.proto.v0 import schema_pb2
  schema = schema_pb2.Schema()
  for name in panoptic_features.FEATURES:
    feature = schema.feature.add(name=name)
    if name in panoptic_features.FLOAT_FEATURES:
      feature.type = schema_pb2.FLOAT
    else:
      feature.type = schema_pb2.INT
      feature.int_domain.is_categorical = (
          name in panoptic_features.CATEGORICAL_FEATURES)
  return tfdv.StatsOptions(schema=schema,
                           num_rank_histogram_buckets=_RANK_HISTOGRAM_BUCKETS,
                           desired_batch_size=_BATCH_SIZE)


def statistics_path(statistics_uri: str, split: str = 'train') -> str:
  """Where a split's statistics lie in an ExampleStatistics artifact."""
  return os.path.join(statistics_uri, f'Split-{split}', STATISTICS_FILE)


class _DeriveFeatures(beam.DoFn):
  """Raw serialized tf.Example -> {feature: values} (`panoptic_features`)."""

  def setup(self):
    self._derive = panoptic_features.FeatureDeriver()

  def process(self, serialized: bytes):
    yield self._derive(serialized)


def derive_statistics(pipeline: beam.Pipeline, examples_pattern: str,
                      output_path: str, label: str) -> None:
  """Adds to `pipeline`: read the examples, derive, TFDV statistics, write."""
  _ = (pipeline
       | f'Read[{label}]' >> beam.io.ReadFromTFRecord(examples_pattern)
       | f'Derive[{label}]' >> beam.ParDo(_DeriveFeatures())
       | f'Batch[{label}]' >> beam.BatchElements(
           min_batch_size=1, max_batch_size=_BATCH_SIZE)
       | f'ToRecordBatch[{label}]' >> beam.Map(
           panoptic_features.to_record_batch)
       | f'Statistics[{label}]' >> tfdv.GenerateStatistics(stats_options())
       | f'Write[{label}]' >> tfdv.WriteStatisticsToBinaryFile(output_path))


def span_of(artifact) -> Optional[int]:
  """An artifact's span (IR-based runners record it as a custom property);
  None for a type without one."""
  if artifact.has_custom_property('span'):
    return int(artifact.get_int_custom_property('span'))
  return int(artifact.span or 0) if artifact.has_property('span') else None


@tfx.dsl.components.component(use_beam=True)
def PanopticStatisticsGen(
    examples: tfx.dsl.components.InputArtifact[
        tfx.types.standard_artifacts.Examples],
    statistics: tfx.dsl.components.OutputArtifact[
        tfx.types.standard_artifacts.ExampleStatistics],
    beam_pipeline: tfx.dsl.components.BeamComponentParameter[
        beam.Pipeline] = None) -> None:
  """Statistics of the segments of every split's examples (see module doc)."""
  splits = artifact_utils.decode_split_names(examples.split_names)
  statistics.split_names = artifact_utils.encode_split_names(splits)
  statistics.span = span_of(examples) or 0
  with beam_pipeline as pipeline:
    for split in splits:
      derive_statistics(
          pipeline, os.path.join(examples.uri, f'Split-{split}', '*'),
          statistics_path(statistics.uri, split), split)
