"""MaskFormer input pipeline over tf.Transform outputs.

Records hold either transformed tf.Examples (`schemas/transform_output.md`,
what TFX Transform materializes; `DataConfig.transform_graph_dir = ''`) or raw
TF Model Garden COCO panoptic tf.Examples to which the tf.Transform graph in
`transform_graph_dir` is applied on the fly (Transform with
`materialize=False`).

The image is stored as one byte string (the source JPEG/PNG, or raw uint8
pixels when the Transform resized it), the S×S label maps as rows of raw
bytes (uint8/uint16, padding left out); both are decoded with `transform_module.encoding`;
`pixel_valid` is derived from `original_size`.

Each dataset element is `(image, labels)` with static shapes:
  image: float32 [S, S, 3], normalised with the ImageNet mean/std of the
    reference (padding is 0 after normalisation, as the reference pads the
    normalised image).
  labels:
    segment_map: int32 [S, S], slot per pixel, −1 for void and padding.
    segment_classes: int32 [N], contiguous class per slot, −1 if unused.
    pixel_valid: int32 [S, S], 1 on image pixels, 0 on padding.
    category_mask, instance_mask: int32 [S, S] (evaluation data only), the
      COCO category / instance ids for PQ, 0 on padding.
Training data are augmented (`augmentation.augment`); slots whose segment
left the crop keep their class and get an empty mask (the task marks them
invalid).
"""

import functools
from typing import Dict, Mapping, Optional, Tuple

import tensorflow as tf

from official.core import input_reader
from official.vision.ops import preprocess_ops
from trainer_module.configs import maskformer as maskformer_cfg
from trainer_module.dataloaders import augmentation
from transform_module import encoding

# Reference (detectron2) pixel mean/std, RGB, for 0..255 images.
MEAN_RGB = preprocess_ops.MEAN_RGB
STDDEV_RGB = preprocess_ops.STDDEV_RGB

TRAIN_LABEL_KEYS = ('segment_map', 'segment_classes', 'pixel_valid')
EVAL_LABEL_KEYS = TRAIN_LABEL_KEYS + ('category_mask', 'instance_mask')


def transformed_feature_spec(output_size: int, num_segment_slots: int,
                             with_eval_labels: bool
                            ) -> Dict[str, tf.io.FixedLenFeature]:
  """Parsing spec of the transformed features the trainer reads.

  The image is one byte string, the S×S label maps S byte strings (rows)
  each (`transform_module.encoding`).
  """
  size, slots = output_size, num_segment_slots
  spec = {
      'image': tf.io.FixedLenFeature([], tf.string),
      'original_size': tf.io.FixedLenFeature([2], tf.int64),
      'segment_map': tf.io.FixedLenFeature([size], tf.string),
      'segment_classes': tf.io.FixedLenFeature([slots], tf.int64),
  }
  if with_eval_labels:
    spec['category_mask'] = tf.io.FixedLenFeature([size], tf.string)
    spec['instance_mask'] = tf.io.FixedLenFeature([size], tf.string)
  return spec


def normalize_image(image: tf.Tensor, pixel_valid: tf.Tensor) -> tf.Tensor:
  """Normalises 0..255 RGB images ([..., H, W, 3]); padding becomes 0.

  The model expects normalised images: serving code must apply this too.
  """
  image = tf.cast(image, tf.float32)
  normalized = (image - tf.constant(MEAN_RGB, tf.float32)) / tf.constant(
      STDDEV_RGB, tf.float32)
  return tf.where(tf.cast(pixel_valid, tf.bool)[..., tf.newaxis], normalized,
                  0.0)


class Decoder:
  """Decodes one serialized record into transformed features.

  Transformed records are parsed directly. Raw TFMG records are parsed with
  the transform graph's raw feature spec and run through its
  `transform_features_layer()`. Either way the encoded image and maps are
  then decoded (`encoding.decode_transformed`: uint8 image, int32 maps,
  `pixel_valid`).
  """

  def __init__(self, params: maskformer_cfg.DataConfig):
    self._output_size = params.output_size
    self._spec = transformed_feature_spec(
        params.output_size, params.num_segment_slots,
        with_eval_labels=not params.is_training)
    self._transform_layer = None
    if params.transform_graph_dir:
      # Imported lazily: tensorflow_transform is heavy and only needed here.
      import tensorflow_transform as tft
      tft_output = tft.TFTransformOutput(params.transform_graph_dir)
      self._check_transform_output(tft_output.transformed_feature_spec(),
                                   params)
      self._raw_spec = tft_output.raw_feature_spec()
      self._transform_layer = tft_output.transform_features_layer()

  def _check_transform_output(self, transformed_spec: Mapping[str, object],
                              params: maskformer_cfg.DataConfig) -> None:
    """Raises ValueError if the transform graph's S or N differ from ours."""
    for key, feature in self._spec.items():
      if key not in transformed_spec:
        raise ValueError(
            f'The transform graph in {params.transform_graph_dir} has no '
            f'output {key!r}; it has {sorted(transformed_spec)}.')
      dtype = getattr(transformed_spec[key], 'dtype', None)
      if dtype != feature.dtype:
        raise ValueError(
            f'The transform graph in {params.transform_graph_dir} writes '
            f'{key!r} as {dtype}, expected {feature.dtype}: it was written '
            'under an older output contract (schemas/transform_output.md); '
            'rerun the Transform.')
      shape = list(getattr(transformed_spec[key], 'shape', []))
      if shape != list(feature.shape):
        field = ('num_segment_slots' if key == 'segment_classes'
                 else 'output_size')
        raise ValueError(
            f'DataConfig.{field} does not match the transform graph in '
            f'{params.transform_graph_dir}: {key!r} has shape {shape}, '
            f'expected {list(feature.shape)} (output_size='
            f'{params.output_size}, num_segment_slots='
            f'{params.num_segment_slots}).')

  def decode(self, serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
    """The decoded features of `self._spec` for one serialized example."""
    if self._transform_layer is None:
      parsed = tf.io.parse_single_example(serialized, self._spec)
    else:
      raw = tf.io.parse_example(serialized[tf.newaxis], self._raw_spec)
      transformed = self._transform_layer(raw)
      parsed = {key: tf.ensure_shape(transformed[key][0], feature.shape)
                for key, feature in self._spec.items()}
    return encoding.decode_transformed(parsed, self._output_size)


class Parser:
  """Turns decoded features into `(image, labels)` model inputs."""

  def __init__(self, params: maskformer_cfg.DataConfig):
    self._output_size = params.output_size
    self._augmentation = augmentation.train_resize_settings(params)
    self._eval_resize = augmentation.eval_resize_settings(params)

  def parse_fn(self, is_training: bool):
    """The parsing function for training or evaluation data."""
    return self._parse_train_data if is_training else self._parse_eval_data

  def _parse_train_data(self, decoded: Mapping[str, tf.Tensor]
                       ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    image, segment_map, pixel_valid = augmentation.augment(
        tf.cast(decoded['image'], tf.float32),
        tf.cast(decoded['segment_map'], tf.int32),
        decoded['pixel_valid'],
        **self._augmentation)
    labels = {
        'segment_map': segment_map,
        'segment_classes': tf.cast(decoded['segment_classes'], tf.int32),
        'pixel_valid': pixel_valid,
    }
    return normalize_image(image, pixel_valid), labels

  def _parse_eval_data(self, decoded: Mapping[str, tf.Tensor]
                      ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    labels = {key: tf.cast(decoded[key], tf.int32) for key in EVAL_LABEL_KEYS}
    image = decoded['image']
    if self._eval_resize:
      label_maps = {key: labels[key] for key in
                    ('segment_map', 'category_mask', 'instance_mask')}
      image, label_maps, pixel_valid = augmentation.resize_for_eval(
          tf.cast(image, tf.float32), label_maps, labels['pixel_valid'],
          **self._eval_resize)
      labels.update(label_maps, pixel_valid=pixel_valid)
    return normalize_image(image, labels['pixel_valid']), labels


def build_dataset(params: maskformer_cfg.DataConfig,
                  input_context: Optional[tf.distribute.InputContext] = None
                 ) -> tf.data.Dataset:
  """Builds the batched (per-replica) dataset described by `params`."""
  if not params.input_path:
    raise ValueError('DataConfig.input_path is empty: set it to the glob(s) '
                     'of the (transformed) TFRecord files.')
  decoder = Decoder(params)
  parser = Parser(params)
  reader = input_reader.InputReader(
      params,
      dataset_fn=functools.partial(tf.data.TFRecordDataset,
                                   compression_type=params.compression_type),
      decoder_fn=decoder.decode,
      parser_fn=parser.parse_fn(params.is_training))
  return reader.read(input_context=input_context)
