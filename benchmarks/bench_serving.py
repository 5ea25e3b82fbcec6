"""Times the exported serving signature end to end on an encoded JPEG.

What a Vertex endpoint runs per request, less the JSON/base64 layer: the
SavedModel's `serving_default` (tf.Transform graph: JPEG decoding and
resizing into S x S; the model without deep supervision; panoptic inference
of the kept queries at S; the COCO panoptic PNG at the original size).

Set-up (cached in `--work_dir`): a 3-image synthetic sample transformed at
S (`transform_module.beam_runner`, N = 100 slots), a randomly initialised
model of `--experiment` saved as a checkpoint and exported with
`trainer_module.export.export_saved_model`. A random model keeps no query at
the configured 0.8 class-score threshold, so the export's threshold is set
between the `--kept_queries`-th and the next query score of the benchmark
image (scores read through the same transform graph and model): serving
then post-processes that many queries, as a trained model keeps ~10-20.

The image is a 640x480 JPEG (smooth noise); batch B repeats it. Prints the
median seconds per call and images/s for each `--batch_sizes` entry.

Example:
  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/bench_serving.py \\
      --batch_sizes 1,8 --repeats 3 --threads 2 --inter_op 1
"""

import argparse
import pathlib
import time

import numpy as np
import tensorflow as tf

from official.core import exp_factory
from trainer_module import registry_imports  # pylint: disable=unused-import
from trainer_module import export
from trainer_module.dataloaders import maskformer_input
from trainer_module.modeling import factory
from transform_module import encoding
from transform_module import preprocessing


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--experiment', default='maskformer_coco_panoptic')
  parser.add_argument('--image_size', type=int, default=640, help='S')
  parser.add_argument('--batch_sizes', default='1,8')
  parser.add_argument('--repeats', type=int, default=3)
  parser.add_argument('--threads', type=int, default=2,
                      help='intra-op threads (0: TensorFlow chooses)')
  parser.add_argument('--inter_op', type=int, default=0,
                      help='inter-op threads (0: TensorFlow chooses, the '
                      'number of cores); 1 runs one op at a time, as TF '
                      'Serving with --tensorflow_inter_op_parallelism=1')
  parser.add_argument('--kept_queries', type=int, default=15)
  parser.add_argument('--work_dir', default='/tmp/bench_serving',
                      help='sample, transform graph, checkpoint, SavedModel '
                      '(reused when present)')
  return parser.parse_args()


def _jpeg() -> bytes:
  photo = tf.image.resize(tf.random.stateless_uniform(
      [60, 80, 3], seed=[1, 2], maxval=255.0), [480, 640])
  return tf.io.encode_jpeg(tf.cast(photo, tf.uint8), quality=90).numpy()


def _transform_graph(work_dir: pathlib.Path, size: int) -> str:
  graph = work_dir / f'transform_{size}'
  if not (graph / 'transform_fn').exists():
    from panoptic_data import sample_data  # pylint: disable=g-import-not-at-top
    from transform_module import beam_runner  # pylint: disable=g-import-not-at-top
    sample = work_dir / 'sample'
    sample_data.make_sample_tfrecords(sample, num_train=2, num_val=1,
                                      image_size=64, seed=0)
    beam_runner.run_transform(
        str(sample / 'tfrecords' / '*.tfrecord'), str(graph),
        {'output_size': size, 'num_segment_slots': 100})
  return str(graph)


def _score_threshold(model, graph: str, size: int, jpeg: bytes,
                     kept: int) -> float:
  """A class-score threshold that keeps `kept` queries of the image."""
  import tensorflow_transform as tft  # pylint: disable=g-import-not-at-top
  from tensorflow_transform.saved import saved_transform_io_v2  # pylint: disable=g-import-not-at-top
  loader = saved_transform_io_v2.SavedModelLoader(
      tft.TFTransformOutput(graph).transform_savedmodel_dir)
  transformed = loader.apply_transform_model({
      preprocessing.IMAGE_KEY: tf.constant([jpeg]),
      preprocessing.SOURCE_ID_KEY: tf.constant([b'']),
  })
  decoded = encoding.decode_transformed(
      {key: transformed[key] for key in ('image', 'original_size')}, size)
  images = maskformer_input.normalize_image(decoded['image'],
                                            decoded['pixel_valid'])
  probs = tf.nn.softmax(model(images, training=False)['class_logits'])[0]
  no_object = probs.shape[-1] - 1
  scores = np.sort(np.where(np.argmax(probs, -1) != no_object,
                            np.max(probs, -1), 0.0))[::-1]
  return float((scores[kept - 1] + scores[kept]) / 2)


def _export(args: argparse.Namespace, jpeg: bytes) -> str:
  work_dir = pathlib.Path(args.work_dir)
  size = args.image_size
  saved_model = work_dir / f'saved_model_{args.experiment}_{size}'
  if (saved_model / 'saved_model.pb').exists():
    return str(saved_model)
  graph = _transform_graph(work_dir, size)
  params = exp_factory.get_exp_config(args.experiment)
  params.override({'task': {
      'model': {'input_size': [size, size, 3]},
      'train_data': {'output_size': size},
      'validation_data': {'output_size': size}}})
  tf.random.set_seed(0)
  model = factory.build_maskformer_model(
      params.task.model.replace(deep_supervision=False))
  threshold = _score_threshold(model, graph, size, jpeg, args.kept_queries)
  params.override({'task': {'evaluation': {
      'object_mask_threshold': threshold}}})
  checkpoint = tf.train.Checkpoint(model=model).write(
      str(work_dir / 'ckpt' / 'ckpt'))
  temporary = saved_model.with_name(saved_model.name + '.tmp')
  export.export_saved_model(params, checkpoint, graph, str(temporary))
  temporary.rename(saved_model)
  return str(saved_model)


def main() -> None:
  args = _parse_args()
  if args.threads:
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
  if args.inter_op:
    tf.config.threading.set_inter_op_parallelism_threads(args.inter_op)
  jpeg = _jpeg()
  start = time.perf_counter()
  saved_model = _export(args, jpeg)
  print(f'SavedModel {saved_model} ready in '
        f'{time.perf_counter() - start:.0f} s')
  serve = tf.saved_model.load(saved_model).signatures['serving_default']
  for batch in [int(b) for b in args.batch_sizes.split(',')]:
    images = tf.constant([jpeg] * batch)
    outputs = serve(images=images)  # Warm-up.
    times = []
    for _ in range(args.repeats):
      begin = time.perf_counter()
      outputs = {key: value.numpy() for key, value in
                 serve(images=images).items()}
      times.append(time.perf_counter() - begin)
    seconds = float(np.median(times))
    print(f'serving_default batch {batch} (inter-op threads '
          f'{tf.config.threading.get_inter_op_parallelism_threads() or "default"}'
          f'): {seconds:.3f} s per call, '
          f'{batch / seconds:.2f} images/s (median of {args.repeats}), '
          f'segments {outputs["num_segments"].tolist()}')


if __name__ == '__main__':
  main()
