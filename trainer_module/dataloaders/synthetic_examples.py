"""Synthetic transformed examples (`schemas/transform_output.md`).

Used by the tests and the benchmarks.

Each example has an image of random size fitted into the top-left corner of
an S×S square: an upper and a lower stuff region and 1–3 rectangular things.
Every pixel's colour encodes its segment slot (`slot_colour`), so that tests
can check that augmentations keep images and segment maps aligned.
"""

import pathlib
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf

from schemas import load_categories
from transform_module import encoding
from transform_module import panoptic_targets

# COCO panoptic category ids: person, car (things); sky, grass (stuff).
THING_CATEGORY_IDS = (1, 3)
STUFF_CATEGORY_IDS = (187, 193)


# Well-separated colours (no colour is a blend of a few others, so that a
# bilinear blend along a border cannot pass for a third segment's colour).
_SLOT_COLOURS = np.array(
    [[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
     [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
     [210, 245, 60], [250, 190, 212], [0, 128, 128], [220, 190, 255],
     [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195]],
    np.float32)


def slot_colour(slot: int) -> np.ndarray:
  """A distinct 0..255 RGB colour per slot (pixels of slot j)."""
  return _SLOT_COLOURS[slot % len(_SLOT_COLOURS)]


def contiguous_class(category_id: int) -> int:
  """Position of a COCO panoptic category id in the category list."""
  ids = [int(category['id']) for category in load_categories()]
  return ids.index(category_id)


def make_transformed_example(rng: np.random.Generator, output_size: int,
                             num_segment_slots: int,
                             num_things: Optional[int] = None
                            ) -> Dict[str, np.ndarray]:
  """Returns the transformed features of one random example (numpy).

  The example has two stuff segments and `num_things` thing boxes (default:
  1 to 3 at random; at most `num_segment_slots` - 2).
  """
  size, slots = output_size, num_segment_slots
  long_side = size
  short_side = int(rng.integers(size // 2, size + 1))
  height, width = ((long_side, short_side) if rng.random() < 0.5 else
                   (short_side, long_side))
  segment_map = np.full([size, size], -1, np.int64)
  category_mask = np.zeros([size, size], np.int64)
  instance_mask = np.zeros([size, size], np.int64)
  segment_classes = np.full([slots], -1, np.int64)
  segment_is_thing = np.zeros([slots], np.int64)

  def paint(slot, rows, cols, category_id, instance_id):
    segment_map[rows, cols] = slot
    category_mask[rows, cols] = category_id
    instance_mask[rows, cols] = instance_id
    segment_classes[slot] = contiguous_class(category_id)
    segment_is_thing[slot] = int(category_id in THING_CATEGORY_IDS)

  split = height // 2
  paint(0, slice(0, split), slice(0, width), STUFF_CATEGORY_IDS[0], 0)
  paint(1, slice(split, height), slice(0, width), STUFF_CATEGORY_IDS[1], 0)
  if num_things is None:
    num_things = int(rng.integers(1, min(3, slots - 2) + 1))
  num_things = min(num_things, slots - 2)
  for thing in range(num_things):
    box_h = int(rng.integers(height // 5, height // 2 + 1))
    box_w = int(rng.integers(width // 5, width // 2 + 1))
    top = int(rng.integers(0, height - box_h + 1))
    left = int(rng.integers(0, width - box_w + 1))
    category_id = THING_CATEGORY_IDS[thing % len(THING_CATEGORY_IDS)]
    paint(2 + thing, slice(top, top + box_h), slice(left, left + box_w),
          category_id, thing + 1)
  # A thing may be fully covered by a later one: its slot then stays with an
  # empty mask, as after an augmentation crop.
  image = np.zeros([size, size, 3], np.uint8)
  for slot in range(slots):
    image[segment_map == slot] = slot_colour(slot)
  pixel_valid = np.zeros([size, size], np.int64)
  pixel_valid[:height, :width] = 1
  return {
      'image': image,
      'pixel_valid': pixel_valid,
      'segment_map': segment_map,
      'segment_classes': segment_classes,
      'segment_is_thing': segment_is_thing,
      'num_segments': np.array(2 + num_things, np.int64),
      'category_mask': category_mask,
      'instance_mask': instance_mask,
      'source_id': np.array(str(rng.integers(1 << 30)).encode()),
      'original_size': np.array([height, width], np.int64),
  }


def to_tf_example(features: Dict[str, np.ndarray]) -> tf.train.Example:
  """Encodes transformed features as a tf.Example, as the Transform writes
  them: the image as one string (`encoding.encode_numpy_image`; its padding
  must be 0), S×S label maps as rows of raw bytes, `pixel_valid` left out
  (derived)."""
  feature = {}
  for key, value in features.items():
    value = np.asarray(value)
    if key == 'pixel_valid':
      continue
    if key == encoding.IMAGE_KEY:
      new_size = panoptic_targets.scaled_sizes(
          tf.constant(features['original_size']), value.shape[0]).numpy()
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=[encoding.encode_numpy_image(value, new_size)]))
    elif key in encoding.ROW_DTYPES:
      feature[key] = tf.train.Feature(bytes_list=tf.train.BytesList(
          value=encoding.encode_numpy(key, value)))
    elif value.dtype == np.float32:
      feature[key] = tf.train.Feature(
          float_list=tf.train.FloatList(value=value.ravel()))
    elif value.dtype == np.int64:
      feature[key] = tf.train.Feature(
          int64_list=tf.train.Int64List(value=value.ravel()))
    else:
      feature[key] = tf.train.Feature(
          bytes_list=tf.train.BytesList(value=[value.item()]))
  return tf.train.Example(features=tf.train.Features(feature=feature))


def write_transformed_records(path: pathlib.Path, num_examples: int,
                              output_size: int, num_segment_slots: int,
                              seed: int = 0,
                              compression_type: str = 'GZIP'
                             ) -> List[Dict[str, np.ndarray]]:
  """Writes random transformed examples to one TFRecord file.

  Returns:
    The examples' features, in file order.
  """
  rng = np.random.default_rng(seed)
  examples = [make_transformed_example(rng, output_size, num_segment_slots)
              for _ in range(num_examples)]
  options = tf.io.TFRecordOptions(compression_type=compression_type)
  with tf.io.TFRecordWriter(str(path), options) as writer:
    for example in examples:
      writer.write(to_tf_example(example).SerializeToString())
  return examples


def stack(examples: Sequence[Dict[str, np.ndarray]], key: str) -> np.ndarray:
  """Stacks one feature of several examples along a new batch axis."""
  return np.stack([example[key] for example in examples])
