"""tf.Transform preprocessing_fn: TFMG COCO panoptic records to MaskFormer data.

The output contract is documented in `schemas/transform_output.md`.

The graph has two branches. The image branch (`image`, `pixel_valid`,
`original_size`, `source_id`) reads only `image/encoded` and `image/source_id`,
so the same transform graph serves examples without label features. The label
branch reads the panoptic PNGs (and `image/height`, `image/width`) and the
image's decoded size. tf.Transform feeds empty strings / zeros for label
features missing at serving time and runs the whole graph, so an example whose
two label PNGs are both empty is treated as unlabelled (`has_labels` = 0,
all-void targets) instead of failing; one empty and one non-empty PNG is an
error.
"""

import dataclasses
import functools
from typing import Any, Dict, Mapping, Optional, Sequence

import tensorflow as tf

from schemas import load_categories
from transform_module import decode_ops
from transform_module import encoding
from transform_module import panoptic_targets

# Raw features, as written by official/vision/data/create_coco_tf_record.py
# with --include_panoptic_masks=True.
IMAGE_KEY = 'image/encoded'
SOURCE_ID_KEY = 'image/source_id'
HEIGHT_KEY = 'image/height'
WIDTH_KEY = 'image/width'
CATEGORY_MASK_KEY = 'image/panoptic/category_mask'
INSTANCE_MASK_KEY = 'image/panoptic/instance_mask'
IMAGE_FEATURE_KEYS = (IMAGE_KEY, SOURCE_ID_KEY)

# Outputs of the image branch.
IMAGE_OUTPUT_KEYS = ('image', 'original_size', 'source_id')
# Outputs of the label branch.
LABEL_OUTPUT_KEYS = ('segment_map', 'segment_classes', 'segment_is_thing',
                     'num_segments', 'num_dropped_segments', 'category_mask',
                     'instance_mask', 'has_labels')


@dataclasses.dataclass(frozen=True)
class TransformConfig:
  """Static sizes of the transform outputs.

  Attributes:
    output_size: S, the side of the square padded output.
    num_segment_slots: N, the number of segment slots per example.
  """
  output_size: int = 640
  num_segment_slots: int = 100

  @classmethod
  def from_custom_config(
      cls, custom_config: Optional[Mapping[str, Any]]) -> 'TransformConfig':
    """Reads `output_size` and `num_segment_slots` (defaults 640 and 100)."""
    custom_config = custom_config or {}
    config = cls(
        output_size=int(custom_config.get('output_size', cls.output_size)),
        num_segment_slots=int(
            custom_config.get('num_segment_slots', cls.num_segment_slots)))
    if config.output_size <= 0 or config.num_segment_slots <= 0:
      raise ValueError(f'output_size and num_segment_slots must be positive, '
                       f'got {config}.')
    if config.num_segment_slots > encoding.MAX_NUM_SEGMENT_SLOTS:
      raise ValueError(
          f'num_segment_slots must be at most '
          f'{encoding.MAX_NUM_SEGMENT_SLOTS} (segment_map is stored as '
          f'uint8), got {config.num_segment_slots}.')
    return config


def raw_feature_spec() -> Dict[str, tf.io.FixedLenFeature]:
  """Feature spec of the raw TFMG features that the transform reads."""
  spec = {key: tf.io.FixedLenFeature([], tf.string)
          for key in (IMAGE_KEY, SOURCE_ID_KEY, CATEGORY_MASK_KEY,
                      INSTANCE_MASK_KEY)}
  spec[HEIGHT_KEY] = tf.io.FixedLenFeature([], tf.int64)
  spec[WIDTH_KEY] = tf.io.FixedLenFeature([], tf.int64)
  return spec


def _image_outputs(encoded: tf.Tensor, source_id: tf.Tensor,
                   config: TransformConfig) -> Dict[str, tf.Tensor]:
  """Image branch for one example."""
  image = decode_ops.decode_rgb_image(encoded, source_id)
  image_size = tf.shape(image)[:2]
  new_size = panoptic_targets.scaled_size(image_size[0], image_size[1],
                                          config.output_size)
  resized = panoptic_targets.resize_image(image, new_size)
  return {
      'image': encoding.encode_image(encoded, image_size, resized),
      'original_size': tf.cast(image_size, tf.int64),
  }


def _assert_valid_categories(category_mask: tf.Tensor,
                             tables: panoptic_targets.CategoryTables,
                             source_id: tf.Tensor) -> tf.Operation:
  # The ids present, from a histogram (one pass over the pixels; ids are
  # PNG values < 2**16), are checked instead of every pixel.
  counts = tf.math.bincount(tf.reshape(tf.cast(category_mask, tf.int32), [-1]))
  present = tf.where(counts > 0)[:, 0]
  is_valid = tables.is_valid_label(present)
  return tf.debugging.Assert(
      tf.reduce_all(is_valid),
      [f'{CATEGORY_MASK_KEY} has category ids that are not COCO panoptic '
       'categories; source_id:', source_id, 'invalid ids (smallest first):',
       tf.boolean_mask(present, tf.logical_not(is_valid))],
      summarize=10)


def _assert_declared_size(height: tf.Tensor, width: tf.Tensor,
                          image_size: tf.Tensor,
                          source_id: tf.Tensor) -> tf.Operation:
  declared = tf.stack([height, width])
  return tf.debugging.Assert(
      tf.reduce_all(tf.equal(declared, image_size)),
      [f'{HEIGHT_KEY}/{WIDTH_KEY} differ from the decoded image size; '
       'source_id:', source_id, 'declared (height, width):', declared,
       'decoded (height, width):', image_size])


def _label_targets(category_png: tf.Tensor, instance_png: tf.Tensor,
                   source_id: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                   image_size: tf.Tensor, config: TransformConfig,
                   tables: panoptic_targets.CategoryTables
                   ) -> Dict[str, tf.Tensor]:
  """Label branch for one labelled example."""
  # Checks run one after another so that a record with several problems
  # always reports the same (first) one.
  category = decode_ops.decode_label_png(category_png, source_id,
                                         CATEGORY_MASK_KEY)
  with tf.control_dependencies([category]):
    instance = decode_ops.decode_label_png(instance_png, source_id,
                                           INSTANCE_MASK_KEY)
  with tf.control_dependencies([instance]):
    check = decode_ops.assert_same_size(category, image_size, source_id,
                                        CATEGORY_MASK_KEY)
  with tf.control_dependencies([check]):
    check = decode_ops.assert_same_size(instance, image_size, source_id,
                                        INSTANCE_MASK_KEY)
  with tf.control_dependencies([check]):
    check = _assert_declared_size(height, width, image_size, source_id)
  with tf.control_dependencies([check]):
    check = _assert_valid_categories(category, tables, source_id)
  with tf.control_dependencies([check]):
    new_size = panoptic_targets.scaled_size(
        tf.cast(image_size[0], tf.int32), tf.cast(image_size[1], tf.int32),
        config.output_size)
    category = panoptic_targets.resize_nearest(category, new_size)
    instance = panoptic_targets.resize_nearest(instance, new_size)
    # Slots are found on the resized masks before padding (fewer pixels).
    targets = panoptic_targets.segment_targets(category, instance, tables,
                                               config.num_segment_slots)
  # The maps are stored unpadded: the decoding pads them (-1 / 0 / 0).
  size = config.output_size
  targets['segment_map'] = encoding.encode_rows(
      'segment_map', targets['segment_map'], size)
  targets['category_mask'] = encoding.encode_rows('category_mask', category,
                                                  size)
  targets['instance_mask'] = encoding.encode_rows('instance_mask', instance,
                                                  size)
  targets['has_labels'] = tf.constant(1, tf.int64)
  return targets


def _unlabelled_targets(config: TransformConfig) -> Dict[str, tf.Tensor]:
  """All-void targets for an example without label PNGs."""
  size, slots = config.output_size, config.num_segment_slots
  return {
      'segment_map': encoding.void_rows(size),
      'segment_classes': tf.fill([slots], tf.constant(-1, tf.int64)),
      'segment_is_thing': tf.zeros([slots], tf.int64),
      'num_segments': tf.constant(0, tf.int64),
      'num_dropped_segments': tf.constant(0, tf.int64),
      'category_mask': encoding.void_rows(size),
      'instance_mask': encoding.void_rows(size),
      'has_labels': tf.constant(0, tf.int64),
  }


def _label_outputs(category_png: tf.Tensor, instance_png: tf.Tensor,
                   source_id: tf.Tensor, height: tf.Tensor, width: tf.Tensor,
                   image_size: tf.Tensor, config: TransformConfig,
                   tables: panoptic_targets.CategoryTables
                   ) -> Dict[str, tf.Tensor]:
  """Label outputs of one example: targets, or all-void when unlabelled."""
  has_category = tf.strings.length(category_png) > 0
  has_instance = tf.strings.length(instance_png) > 0
  consistent = tf.debugging.Assert(
      tf.equal(has_category, has_instance),
      [f'exactly one of {CATEGORY_MASK_KEY} and {INSTANCE_MASK_KEY} is empty;'
       ' source_id:', source_id])
  with tf.control_dependencies([consistent]):
    return tf.cond(
        has_category,
        functools.partial(_label_targets, category_png, instance_png,
                          source_id, height, width, image_size, config, tables),
        functools.partial(_unlabelled_targets, config))


def _output_signature(config: TransformConfig,
                      keys: Sequence[str]) -> Dict[str, tf.TensorSpec]:
  size, slots = config.output_size, config.num_segment_slots
  specs = {
      'image': tf.TensorSpec([], tf.string),
      'original_size': tf.TensorSpec([2], tf.int64),
      'segment_map': tf.TensorSpec([size], tf.string),
      'segment_classes': tf.TensorSpec([slots], tf.int64),
      'segment_is_thing': tf.TensorSpec([slots], tf.int64),
      'num_segments': tf.TensorSpec([], tf.int64),
      'num_dropped_segments': tf.TensorSpec([], tf.int64),
      'category_mask': tf.TensorSpec([size], tf.string),
      'instance_mask': tf.TensorSpec([size], tf.string),
      'has_labels': tf.TensorSpec([], tf.int64),
  }
  return {key: specs[key] for key in keys}


def preprocessing_fn(inputs: Dict[str, tf.Tensor],
                     custom_config: Optional[Mapping[str, Any]] = None
                     ) -> Dict[str, tf.Tensor]:
  """tf.Transform preprocessing_fn for MaskFormer panoptic training targets.

  Args:
    inputs: raw features (see `raw_feature_spec`), dense [batch] tensors. Only
      `IMAGE_FEATURE_KEYS` are needed for the image outputs.
    custom_config: optional dict with `output_size` (S, default 640) and
      `num_segment_slots` (N, default 100).

  Returns:
    The transformed features described in `schemas/transform_output.md`.
  """
  config = TransformConfig.from_custom_config(custom_config)
  categories = load_categories()
  if max(int(c['id']) for c in categories) > encoding.MAX_CATEGORY_ID:
    raise ValueError('category_mask is stored as uint8: category ids must be '
                     f'at most {encoding.MAX_CATEGORY_ID}.')
  tables = panoptic_targets.CategoryTables.from_categories(categories)
  source_id = tf.reshape(inputs[SOURCE_ID_KEY], [-1])
  encoded_image = tf.reshape(inputs[IMAGE_KEY], [-1])

  outputs = tf.map_fn(
      lambda args: _image_outputs(*args, config=config),
      (encoded_image, source_id),
      fn_output_signature=_output_signature(
          config, ('image', 'original_size')))
  outputs['source_id'] = source_id

  label_inputs = (
      tf.reshape(inputs[CATEGORY_MASK_KEY], [-1]),
      tf.reshape(inputs[INSTANCE_MASK_KEY], [-1]),
      source_id,
      tf.reshape(tf.cast(inputs[HEIGHT_KEY], tf.int64), [-1]),
      tf.reshape(tf.cast(inputs[WIDTH_KEY], tf.int64), [-1]),
      outputs['original_size'],
  )
  outputs.update(tf.map_fn(
      lambda args: _label_outputs(*args, config=config, tables=tables),
      label_inputs,
      fn_output_signature=_output_signature(config, LABEL_OUTPUT_KEYS)))
  return outputs
