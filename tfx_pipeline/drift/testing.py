"""Helpers shared by the drift tests: raw examples and statistics built by
hand."""

from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from tensorflow_metadata.proto.v0 import statistics_pb2


def png(values: np.ndarray) -> bytes:
  """An 8-bit grayscale PNG of a [H, W] array."""
  return tf.io.encode_png(
      tf.constant(np.asarray(values, np.uint8)[..., None])).numpy()


def raw_example(category: Optional[np.ndarray], instance: Optional[np.ndarray],
                source_id: bytes = b'42', height: int = 0,
                width: int = 0) -> bytes:
  """A serialized raw TFMG example with these masks (None: empty PNGs)."""
  def bytes_feature(value: bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

  def int_feature(value: int):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

  features = {
      'image/source_id': bytes_feature(source_id),
      'image/panoptic/category_mask': bytes_feature(
          b'' if category is None else png(category)),
      'image/panoptic/instance_mask': bytes_feature(
          b'' if instance is None else png(instance)),
      'image/height': int_feature(height),
      'image/width': int_feature(width),
  }
  return tf.train.Example(features=tf.train.Features(
      feature=features)).SerializeToString()


def statistics_of(rows: Sequence[Dict[str, Optional[List]]]
                  ) -> statistics_pb2.DatasetFeatureStatisticsList:
  """TFDV statistics (the PanopticStatisticsGen options) of derived rows."""
  from tensorflow_data_validation.statistics import stats_impl

  from tfx_pipeline.drift import panoptic_features
  from tfx_pipeline.drift import statistics_gen
  return stats_impl.generate_statistics_in_memory(
      panoptic_features.to_record_batch(list(rows)),
      statistics_gen.stats_options())


def rows_of_categories(categories_per_image: Sequence[Sequence[int]],
                       size: int = 64) -> List[Dict[str, List]]:
  """Derived rows of images whose segments have these categories (equal
  areas; thing = category id < 100)."""
  rows = []
  for categories in categories_per_image:
    rows.append({
        'segment_category': list(categories),
        'segment_isthing': [int(c < 100) for c in categories],
        'segment_area_fraction': [1.0 / len(categories)] * len(categories),
        'num_segments': [len(categories)],
        'image_height': [size], 'image_width': [size]})
  return rows
