"""SavedModel export of a trained MaskFormer with serving signatures.

Signatures (B = batch, S = the transform's output size, Q = queries):

* `serving_default(images)`: encoded JPEG/PNG bytes [B], the one input a
  TF Serving REST row-format request fills (`{"instances": [{"b64": ...}]}`,
  as the Vertex AI TensorFlow prediction containers send it) → the COCO
  panoptic result at each image's original size
  (`trainer_module.ops.coco_panoptic_output`):
    panoptic_png_bytes: string [B], the segment ids as a COCO panoptic PNG
      (id = R + 256·G + 256²·B, 0 = void); TF Serving's JSON answer holds
      it base64-encoded (the name ends in `_bytes`).
    segment_id, segment_category_id, segment_isthing: int32 [B, Q] and
      segment_score: float32 [B, Q]: the segments in the PNG in id order,
      then -1 padding; num_segments: int32 [B].
* `serving_examples(examples)`: serialized raw tf.Examples in the TF Model
  Garden COCO panoptic record format (`image/encoded`, `image/source_id`;
  label features are not required) → tf.Transform graph → model → mask
  logits resized bilinearly to S → panoptic inference, at S (the
  Evaluator's signature, by name). Outputs:
    category_mask: int32 [B, S, S] original COCO category id, 0 = void.
    instance_mask: int32 [B, S, S] q + 1 on the thing segment of query q.
    segment_category: int32 [B, Q] COCO category of the segment opened by
      query q (0 if none); segment_score: float32 [B, Q];
    segment_is_thing, segment_valid: bool [B, Q].
    pixel_valid: int32 [B, S, S] 1 on image pixels, 0 on padding (void).
    original_size: int32 [B, 2] (height, width) of the decoded image; the
      image occupies the top-left corner, resized keeping its aspect ratio.
    source_id: string [B].
  A panoptic segment is the (category, instance) pair of its pixels: a thing
  segment has instance q + 1, a stuff segment instance 0.
* `transform_labels(examples)`: serialized labelled raw tf.Examples → the
  transformed `category_mask` and `instance_mask` (int32 [B, S, S]) for
  TFMA, without materializing transformed images for the eval set.

The model is rebuilt in float32 on the CPU outside any distribution scope
and restored from a training checkpoint. The SavedModel is self-contained
(transform graph and category tables included): loading it needs TensorFlow
only, not this project.
"""

import contextlib
from typing import Dict, Iterator, Mapping

import tensorflow as tf
import tf_keras

from official.core import config_definitions as cfg
from schemas import load_categories
from trainer_module.dataloaders import maskformer_input
from trainer_module.modeling import factory
from trainer_module.ops import coco_panoptic_output
from trainer_module.ops.panoptic_inference import panoptic_inference
from transform_module import encoding
from transform_module import preprocessing

SERVING_DEFAULT = 'serving_default'
SERVING_EXAMPLES = 'serving_examples'
TRANSFORM_LABELS = 'transform_labels'
EXAMPLES_INPUT = 'examples'
IMAGES_INPUT = 'images'
LABEL_OUTPUT_KEYS = ('category_mask', 'instance_mask')


class PanopticServingModule(tf.Module):
  """Transform graph + MaskFormer + panoptic inference, as tf.functions.

  Only what serving needs is tracked (and saved): the model's variables, the
  transform graph's loaded SavedModel (its tables and assets) and the
  functions. The Keras objects (the model, tf.Transform's Keras layer) are
  not: tf.saved_model.save would re-trace every Keras layer for Keras
  reloading, which costs minutes and is not needed to serve.
  """

  def __init__(self, model: tf_keras.Model, transform_output_dir: str,
               object_mask_threshold: float, overlap_threshold: float):
    """Initialises the module.

    Args:
      model: A restored MaskFormer (float32).
      transform_output_dir: The tf.Transform output (a TFX `transform_graph`
        artifact) whose graph turns raw examples into model inputs.
      object_mask_threshold: Panoptic inference: minimum class score.
      overlap_threshold: Panoptic inference: minimum owned mask fraction.
    """
    super().__init__(name='maskformer_serving')
    # Imported here: only export needs tensorflow_transform.
    import tensorflow_transform as tft
    from tensorflow_transform.saved import saved_transform_io_v2
    # What `tft.TFTransformOutput.transform_features_layer()` applies and
    # tracks, without its Keras layer: tf.Transform feeds the raw features
    # that are absent (here the labels: empty PNGs give all-void targets).
    tft_output = tft.TFTransformOutput(transform_output_dir)
    transform = saved_transform_io_v2.SavedModelLoader(
        tft_output.transform_savedmodel_dir)
    # S, for decoding the image (`encoding.decode_transformed`): the row count
    # of the transform's label maps.
    output_size = tft_output.transformed_feature_spec()[
        'segment_map'].shape[0]
    self.transform_state = transform.__dict__
    self.model_variables = list(model.variables)

    # The raw features the transform reads (the TFX raw schema may list more,
    # optional ones; a graph written outside TFX has no raw schema).
    labelled_spec = preprocessing.raw_feature_spec()
    image_spec = {key: labelled_spec[key]
                  for key in preprocessing.IMAGE_FEATURE_KEYS}
    image_spec[preprocessing.SOURCE_ID_KEY] = tf.io.FixedLenFeature(
        [], tf.string, default_value='')
    categories = load_categories()
    category_ids = [int(category['id']) for category in categories]
    num_categories = max(category_ids) + 1
    thing_class_mask = [category['isthing'] == 1 for category in categories]

    def panoptic(raw: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
      """Transform, model and panoptic inference of raw image features."""
      transformed = transform.apply_transform_model(dict(raw))
      decoded = encoding.decode_transformed(
          {key: transformed[key] for key in ('image', 'original_size')},
          output_size)
      pixel_valid = decoded['pixel_valid']
      images = maskformer_input.normalize_image(decoded['image'], pixel_valid)
      outputs = model(images, training=False)
      # Serving runs as a TF graph (not XLA): only the kept queries' mask
      # logits are upsampled and post-processed, as in the reference.
      result = panoptic_inference(
          outputs['class_logits'], outputs['mask_logits'],
          thing_class_mask=tf.constant(thing_class_mask, tf.bool),
          category_ids=tf.constant(category_ids, tf.int32),
          object_mask_threshold=object_mask_threshold,
          overlap_threshold=overlap_threshold,
          pixel_valid=pixel_valid,
          output_size=tf.shape(pixel_valid)[1:3],
          kept_queries_only=True)
      result['pixel_valid'] = pixel_valid
      result['original_size'] = tf.cast(transformed['original_size'],
                                        tf.int32)
      result['source_id'] = transformed['source_id']
      return result

    def serve_examples(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
      """Panoptic predictions of serialized raw tf.Examples."""
      return panoptic(tf.io.parse_example(examples, image_spec))

    def serve_images(images: tf.Tensor) -> Dict[str, tf.Tensor]:
      """COCO panoptic results of encoded JPEG/PNG images."""
      return coco_panoptic_output.coco_panoptic_outputs(
          panoptic({
              preprocessing.IMAGE_KEY: images,
              preprocessing.SOURCE_ID_KEY: tf.fill(tf.shape(images), ''),
          }), num_categories)

    def transform_labels(examples: tf.Tensor) -> Dict[str, tf.Tensor]:
      """Transformed label maps (COCO category / instance ids at S × S)."""
      transformed = transform.apply_transform_model(
          tf.io.parse_example(examples, labelled_spec))
      return encoding.decode_transformed(
          {key: transformed[key] for key in LABEL_OUTPUT_KEYS})

    def serving_function(function, input_name):
      return tf.function(
          function, autograph=False,
          input_signature=[tf.TensorSpec([None], tf.string, name=input_name)])

    self.serve_examples = serving_function(serve_examples, EXAMPLES_INPUT)
    self.serve_images = serving_function(serve_images, IMAGES_INPUT)
    self.transform_labels = serving_function(transform_labels,
                                             EXAMPLES_INPUT)

  def signatures(self) -> Dict[str, tf.types.experimental.GenericFunction]:
    """The serving signatures, by name, for `tf.saved_model.save`.

    The functions themselves (they have input signatures), not concrete
    functions: `save` traces each once in its save context, whereas a
    concrete function traced beforehand is traced again there for the
    module's attribute (twice the tracing of the whole model).
    """
    return {
        SERVING_DEFAULT: self.serve_images,
        SERVING_EXAMPLES: self.serve_examples,
        TRANSFORM_LABELS: self.transform_labels,
    }


@contextlib.contextmanager
def _float32_policy() -> Iterator[None]:
  """Builds layers in float32 (training may have set a mixed policy)."""
  policy = tf_keras.mixed_precision.global_policy()
  tf_keras.mixed_precision.set_global_policy('float32')
  try:
    yield
  finally:
    tf_keras.mixed_precision.set_global_policy(policy)


def restore_model(params: cfg.ExperimentConfig,
                  checkpoint_path: str) -> tf_keras.Model:
  """Rebuilds the model of `params` in float32 on the CPU and restores it.

  The model is built without deep supervision (same variables): serving
  needs the last decoder layer's predictions only, and skipping the others'
  mask logits saves a tenth of the inference time at 640².

  Args:
    params: The experiment config the checkpoint was trained with.
    checkpoint_path: A TFMG training checkpoint (its `model` is restored;
      optimizer state and global step are ignored).
  """
  model_config = params.task.model.replace(deep_supervision=False)
  with _float32_policy(), tf.device('/CPU:0'):
    model = factory.build_maskformer_model(model_config)
    model(tf.zeros([1] + list(model_config.input_size), tf.float32),
          training=False)
    status = tf.train.Checkpoint(model=model).read(checkpoint_path)
    status.expect_partial().assert_existing_objects_matched()
  return model


def export_saved_model(params: cfg.ExperimentConfig, checkpoint_path: str,
                       transform_output_dir: str, export_dir: str) -> str:
  """Exports a checkpoint as a SavedModel with the serving signatures.

  Args:
    params: The experiment config (model architecture, inference thresholds
      in `task.evaluation`).
    checkpoint_path: The training checkpoint to export.
    transform_output_dir: The tf.Transform output the model was trained on.
    export_dir: Where the SavedModel is written.

  Returns:
    `export_dir`.
  """
  # The model must not be built inside a TPU/distribution strategy scope.
  if tf.distribute.has_strategy():
    raise RuntimeError('export_saved_model must run outside a distribution '
                       'strategy scope.')
  model = restore_model(params, checkpoint_path)
  evaluation = params.task.evaluation
  module = PanopticServingModule(
      model, transform_output_dir,
      object_mask_threshold=evaluation.object_mask_threshold,
      overlap_threshold=evaluation.overlap_threshold)
  tf.saved_model.save(module, export_dir, signatures=module.signatures())
  return export_dir
