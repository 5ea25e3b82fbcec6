"""Training augmentation and evaluation resize on the tf.Transform output.

Reproduces the reference MaskFormer training augmentation (detectron2
`RandomFlip`, `ResizeShortestEdge` + `RandomCrop("absolute_range")`,
`ResizeShortestEdge`) on the tf.Transform output, whose image fills the
top-left h×w corner of a padded S×S square:

1. crop to the valid h×w image;
2. random horizontal flip;
3. with probability `crop_prob`: resize the short side to one of
   `crop_short_sides`, then crop a random window whose height and width are
   drawn independently from `crop_size_range` (clipped to the image);
4. resize the short side to one of `scale_short_sides` (the reference: 480,
   512, ..., 800), with the long side capped at `max_long_side` (the
   reference: 1333) and at S; both branches rescale;
5. pad bottom/right back to S×S (image 0, segment map −1, pixel_valid 0).

`resize_for_eval` resizes evaluation examples as the reference tests: short
side `short_side` (800), long side at most `max_long_side` (1333) and S.

The sizes are in pixels of the model input; `train_resize_settings` and
`eval_resize_settings` derive them from a `DataConfig`, whose sizes are the
reference's in pixels scaled by `output_size / aug_reference_size`. With
`aug_reference_size == output_size` (e.g. S = 1344 ≥ 1333) they are the
reference's sizes exactly.

Images are resized bilinearly with antialiasing (as PIL's bilinear resize
that detectron2 uses) and label maps with nearest neighbour, both at pixel
centres, so they stay aligned. The ops run in the tf.data pipeline on one
example at a time; intermediate shapes are dynamic, the outputs are static.
"""

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from trainer_module.configs import maskformer as maskformer_cfg


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
  """Resizes an image bilinearly (antialiased) and its segment map by nearest
  neighbour."""
  return resize_image(image, size), resize_label_map(segment_map, size)


def resize_image(image: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """Bilinear, antialiased resize of a float32 [h, w, 3] image."""
  return tf.image.resize(image, size, method=tf.image.ResizeMethod.BILINEAR,
                         antialias=True)


def resize_label_map(label_map: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
  """Nearest-neighbour (pixel-centre) resize of an int [h, w] map."""
  return tf.image.resize(
      label_map[..., tf.newaxis], size,
      method=tf.image.ResizeMethod.NEAREST_NEIGHBOR)[..., 0]


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


def _pad_to(tensor: tf.Tensor, output_size: int, value: int) -> tf.Tensor:
  """Pads the first two axes bottom/right to [S, S] with `value`."""
  height, width = tf.shape(tensor)[0], tf.shape(tensor)[1]
  paddings = [[0, output_size - height], [0, output_size - width]] + [
      [0, 0]] * (tensor.shape.rank - 2)
  return tf.ensure_shape(tf.pad(tensor, paddings, constant_values=value),
                         [output_size, output_size] + tensor.shape[2:])


def pad_to_size(image: tf.Tensor, segment_map: tf.Tensor, output_size: int
               ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Pads bottom/right to [S, S]: image 0, segment map −1, pixel_valid 0."""
  pixel_valid = tf.ones(tf.shape(segment_map), tf.int32)
  return (_pad_to(image, output_size, 0), _pad_to(segment_map, output_size, -1),
          _pad_to(pixel_valid, output_size, 0))


def augment(image: tf.Tensor,
            segment_map: tf.Tensor,
            pixel_valid: tf.Tensor,
            *,
            output_size: int,
            rand_hflip: bool = True,
            crop_prob: float = 0.5,
            crop_short_sides: Sequence[int] = (400, 500, 600),
            crop_size_range: Sequence[int] = (384, 600),
            scale_short_sides: Sequence[int] = tuple(range(480, 801, 32)),
            max_long_side: Optional[int] = None,
           ) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
  """Applies the training augmentation (see the module docstring).

  Sizes are in pixels of the S×S input (`train_resize_settings` scales the
  reference sizes to S).

  Args:
    image: float32 [S, S, 3], the image in the top-left corner.
    segment_map: int32 [S, S], slot per pixel, −1 for void and padding.
    pixel_valid: int [S, S], 1 on image pixels, 0 on padding.
    output_size: S.
    rand_hflip: Whether to flip with probability 0.5.
    crop_prob: Probability of the resize + random crop step.
    crop_short_sides: Short sides to choose from before the crop.
    crop_size_range: [min, max] crop height/width.
    scale_short_sides: Short sides to choose from for the final resize.
    max_long_side: Cap of the long side of the final resize (at most S;
      None: S).

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
  short_sides = tf.constant(list(scale_short_sides), tf.int32)
  short_side = short_sides[_random_int(0, tf.size(short_sides) - 1)]
  image, segment_map = resize_pair(
      image, segment_map,
      _short_side_size(height, width, short_side,
                       _long_side_cap(output_size, max_long_side)))
  return pad_to_size(image, segment_map, output_size)


def _long_side_cap(output_size: int, max_long_side: Optional[int]) -> int:
  return output_size if max_long_side is None else min(output_size,
                                                       max_long_side)


def resize_for_eval(image: tf.Tensor, label_maps: Mapping[str, tf.Tensor],
                    pixel_valid: tf.Tensor, *, output_size: int,
                    short_side: int, max_long_side: Optional[int] = None
                   ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor], tf.Tensor]:
  """Resizes an example to the reference's test size, padded to S×S.

  Args:
    image: float32 [S, S, 3], the image in the top-left corner.
    label_maps: int32 [S, S] maps (segment map, category and instance masks)
      of the same geometry; resized by nearest neighbour and padded with −1
      (`segment_map`) or 0 (others).
    pixel_valid: int [S, S], 1 on image pixels, 0 on padding.
    output_size: S.
    short_side: Short side of the resized image.
    max_long_side: Cap of the long side (at most S; None: S).

  Returns:
    The resized image, label maps and pixel_valid, [S, S(, 3)].
  """
  height, width = valid_extent(pixel_valid)
  size = _short_side_size(height, width, short_side,
                          _long_side_cap(output_size, max_long_side))
  image = resize_image(image[:height, :width], size)
  label_maps = {
      key: _pad_to(resize_label_map(label_map[:height, :width], size),
                   output_size, -1 if key == 'segment_map' else 0)
      for key, label_map in label_maps.items()}
  pixel_valid = _pad_to(tf.ones(size, tf.int32), output_size, 0)
  return _pad_to(image, output_size, 0), label_maps, pixel_valid


def _scaled(params: maskformer_cfg.DataConfig, sizes: Sequence[int]
           ) -> list:
  """Reference sizes in pixels of the S×S input."""
  scale = params.output_size / params.aug_reference_size
  return [max(1, int(round(size * scale))) for size in sizes]


def train_resize_settings(params: maskformer_cfg.DataConfig
                         ) -> Dict[str, Any]:
  """`augment` keyword arguments for a training `DataConfig`."""
  low, high = params.aug_scale_short_side_range
  return dict(
      output_size=params.output_size,
      rand_hflip=params.aug_rand_hflip,
      crop_prob=params.aug_crop_prob,
      crop_short_sides=_scaled(params, params.aug_crop_short_sides),
      crop_size_range=_scaled(params, params.aug_crop_size_range),
      scale_short_sides=sorted(set(_scaled(
          params, range(low, high + 1, params.aug_scale_short_side_step)))),
      max_long_side=_scaled(params, [params.aug_max_long_side])[0])


def eval_resize_settings(params: maskformer_cfg.DataConfig
                        ) -> Optional[Dict[str, Any]]:
  """`resize_for_eval` keyword arguments for an evaluation `DataConfig`, or
  None when it keeps the Transform's size (`eval_short_side = 0`)."""
  if not params.eval_short_side:
    return None
  return dict(
      output_size=params.output_size,
      short_side=_scaled(params, [params.eval_short_side])[0],
      max_long_side=_scaled(params, [params.aug_max_long_side])[0])
