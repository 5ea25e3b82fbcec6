"""Joint training augmentation of an image and its segment map.

Reproduces the reference MaskFormer training augmentation (detectron2
`RandomFlip`, `ResizeShortestEdge` + `RandomCrop("absolute_range")`,
`ResizeShortestEdge`) on the tf.Transform output, whose image fills the
top-left h×w corner of a padded S×S square:

1. crop to the valid h×w image;
2. random horizontal flip;
3. with probability `crop_prob`: resize the short side to one of
   `crop_short_sides`, then crop a random window whose height and width are
   drawn independently from `crop_size_range` (clipped to the image);
4. resize the short side to a random size in `scale_short_side_range`, with
   the long side capped at S (the reference caps at 1333 and pads to a
   variable size; our inputs are static S×S);
5. pad bottom/right back to S×S (image 0, segment map −1, pixel_valid 0).

Images are resized bilinearly and segment maps with nearest neighbour
(both at pixel centres, so they stay aligned). The ops run in the tf.data
pipeline on one example at a time; intermediate shapes are dynamic, the
outputs are static.
"""

from typing import Sequence, Tuple

import tensorflow as tf


def valid_extent(pixel_valid: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """(height, width) int32 of the valid top-left region of a [S, S] mask."""
  valid = tf.cast(pixel_valid > 0, tf.int32)
  height = tf.reduce_sum(tf.reduce_max(valid, axis=1))
  width = tf.reduce_sum(tf.reduce_max(valid, axis=0))
  return height, width


def _random_int(minval: tf.Tensor, maxval: tf.Tensor) -> tf.Tensor:
  """A uniform int32 scalar in [minval, maxval] (inclusive)."""
  return tf.random.uniform([], minval, maxval + 1, dtype=tf.int32)


def resize_pair(image: tf.Tensor, segment_map: tf.Tensor,
                size: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Resizes an image bilinearly and its segment map by nearest neighbour."""
  image = tf.image.resize(image, size, method=tf.image.ResizeMethod.BILINEAR)
  segment_map = tf.image.resize(
      segment_map[..., tf.newaxis], size,
      method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)[..., 0]
  return image, segment_map


def _short_side_size(height: tf.Tensor, width: tf.Tensor,
                     short_side: tf.Tensor,
                     max_long_side: tf.Tensor) -> tf.Tensor:
  """int32 [2] size with the short side = `short_side`, long side capped."""
  size = tf.cast(tf.stack([height, width]), tf.float32)
  scale = tf.minimum(
      tf.cast(short_side, tf.float32) / tf.reduce_min(size),
      tf.cast(max_long_side, tf.float32) / tf.reduce_max(size))
  new_size = tf.cast(tf.floor(size * scale + 0.5), tf.int32)
  return tf.clip_by_value(new_size, 1, max_long_side)


def random_horizontal_flip(image: tf.Tensor, segment_map: tf.Tensor
                          ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Flips [h, w, 3] and [h, w] left-right together with probability 0.5."""
  flip = tf.random.uniform([]) < 0.5
  return tf.cond(flip,
                 lambda: (tf.reverse(image, [1]), tf.reverse(segment_map, [1])),
                 lambda: (image, segment_map))


def resize_and_random_crop(image: tf.Tensor, segment_map: tf.Tensor,
                           short_sides: Sequence[int],
                           crop_size_range: Sequence[int]
                          ) -> Tuple[tf.Tensor, tf.Tensor]:
  """Resizes the short side to a random choice, then crops a random window.

  As detectron2's `RandomCrop("absolute_range")`: the crop height and width
  are drawn independently from [min, max], each clipped to the image size.

  Args:
    image: float32 [h, w, 3].
    segment_map: int [h, w].
    short_sides: Short sides to choose from (pixels).
    crop_size_range: [min, max] crop side (pixels).

  Returns:
    The cropped image and segment map.
  """
  short_sides = tf.constant(list(short_sides), tf.int32)
  short_side = short_sides[_random_int(0, tf.size(short_sides) - 1)]
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  image, segment_map = resize_pair(
      image, segment_map,
      _short_side_size(height, width, short_side, tf.int32.max))

  height, width = tf.shape(image)[0], tf.shape(image)[1]
  min_size, max_size = crop_size_range
  crop_height = _random_int(tf.minimum(height, min_size),
                            tf.minimum(height, max_size))
  crop_width = _random_int(tf.minimum(width, min_size),
                           tf.minimum(width, max_size))
  top = _random_int(0, height - crop_height)
  left = _random_int(0, width - crop_width)
  return (image[top:top + crop_height, left:left + crop_width],
          segment_map[top:top + crop_height, left:left + crop_width])


def pad_to_size(image: tf.Tensor, segment_map: tf.Tensor, output_size: int
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Pads bottom/right to [S, S]: image 0, segment map −1, pixel_valid 0."""
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  paddings = [[0, output_size - height], [0, output_size - width]]
  image = tf.pad(image, paddings + [[0, 0]])
  segment_map = tf.pad(segment_map, paddings, constant_values=-1)
  pixel_valid = tf.pad(tf.ones([height, width], tf.int32), paddings)
  image = tf.ensure_shape(image, [output_size, output_size, 3])
  segment_map = tf.ensure_shape(segment_map, [output_size, output_size])
  pixel_valid = tf.ensure_shape(pixel_valid, [output_size, output_size])
  return image, segment_map, pixel_valid


def augment(image: tf.Tensor,
            segment_map: tf.Tensor,
            pixel_valid: tf.Tensor,
            *,
            output_size: int,
            rand_hflip: bool = True,
            crop_prob: float = 0.5,
            crop_short_sides: Sequence[int] = (400, 500, 600),
            crop_size_range: Sequence[int] = (384, 600),
            scale_short_side_range: Sequence[int] = (480, 800),
           ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Applies the training augmentation (see the module docstring).

  Sizes are in pixels of the S×S input (the caller scales the reference
  sizes to S).

  Args:
    image: float32 [S, S, 3], the image in the top-left corner.
    segment_map: int32 [S, S], slot per pixel, −1 for void and padding.
    pixel_valid: int [S, S], 1 on image pixels, 0 on padding.
    output_size: S.
    rand_hflip: Whether to flip with probability 0.5.
    crop_prob: Probability of the resize + random crop step.
    crop_short_sides: Short sides to choose from before the crop.
    crop_size_range: [min, max] crop height/width.
    scale_short_side_range: [min, max] short side of the final resize.

  Returns:
    image float32 [S, S, 3], segment_map int32 [S, S], pixel_valid int32
    [S, S].
  """
  height, width = valid_extent(pixel_valid)
  image = image[:height, :width]
  segment_map = segment_map[:height, :width]
  if rand_hflip:
    image, segment_map = random_horizontal_flip(image, segment_map)
  if crop_prob > 0.0:
    image, segment_map = tf.cond(
        tf.random.uniform([]) < crop_prob,
        lambda: resize_and_random_crop(image, segment_map, crop_short_sides,
                                       crop_size_range),
        lambda: (image, segment_map))
  height, width = tf.shape(image)[0], tf.shape(image)[1]
  short_side = _random_int(*scale_short_side_range)
  image, segment_map = resize_pair(
      image, segment_map,
      _short_side_size(height, width, short_side, output_size))
  return pad_to_size(image, segment_map, output_size)
