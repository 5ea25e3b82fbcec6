"""Element-wise comparison with the original MaskFormer's intermediates.

`forward.npz` (see `goldens/reference_forward/README.md`) holds every
intermediate of the PyTorch model on one image (NCHW). `compare` runs our
model on the same uint8 image and reports, per array, the shape, max |Δ|,
max |ref| and the relative error max |Δ| / max |ref|; an array passes when
that is at most `tolerance` (1e-4). Panoptic inference runs on our logits
boosted exactly as the reference's (+20 on logit [q, (7q) mod K] for
q < 5) and must give the same segment map and segments.
"""

import dataclasses
import json
from typing import Dict, List, Mapping, Sequence

import numpy as np
import tensorflow as tf

from schemas import load_categories
from trainer_module import raw_outputs
from trainer_module.ops.panoptic_inference import panoptic_inference

TOLERANCE = 1e-4
# The original's pixel normalisation (detectron2 MODEL.PIXEL_MEAN / STD).
PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)
BOOST = 20.0
BOOSTED_QUERIES = 5


@dataclasses.dataclass
class Row:
  name: str
  shape: Sequence[int]
  max_abs_diff: float
  max_abs_ref: float

  @property
  def relative(self) -> float:
    return self.max_abs_diff / max(self.max_abs_ref, 1e-30)

  def passes(self, tolerance: float = TOLERANCE) -> bool:
    return self.max_abs_diff <= tolerance * self.max_abs_ref


def _nchw(value: tf.Tensor) -> np.ndarray:
  return np.transpose(np.asarray(value), (0, 3, 1, 2))


def boost_logits(class_logits: np.ndarray) -> np.ndarray:
  """The reference's boost: +20 on logit [0, q, (7q) mod K], q = 0..4."""
  boosted = np.array(class_logits, np.float32, copy=True)
  num_classes = boosted.shape[-1] - 1
  for query in range(BOOSTED_QUERIES):
    boosted[0, query, (7 * query) % num_classes] += BOOST
  return boosted


def reference_style_panoptic(class_logits: np.ndarray,
                             mask_logits: np.ndarray,
                             object_mask_threshold: float,
                             overlap_threshold: float):
  """(segment map [H, W], segments) numbered as the reference does.

  Runs our `panoptic_inference` on one image ([1, Q, K+1] logits, [1, H, W,
  Q] mask logits at the output size) and renumbers its segments 1, 2, ... in
  query order with contiguous category ids, as MaskFormer's
  `panoptic_inference` returns them.
  """
  num_classes = class_logits.shape[-1] - 1
  categories = load_categories()
  thing = [c['isthing'] == 1 for c in categories][:num_classes]
  result = panoptic_inference(
      tf.constant(class_logits), tf.constant(mask_logits),
      thing_class_mask=tf.constant(thing, tf.bool),
      category_ids=tf.range(1, num_classes + 1),
      object_mask_threshold=object_mask_threshold,
      overlap_threshold=overlap_threshold)
  result = {key: np.asarray(value)[0] for key, value in result.items()}
  category_map = result['category_mask']
  instance_map = result['instance_mask']
  segment_map = np.zeros(category_map.shape, np.int32)
  segments = []
  for query in np.flatnonzero(result['segment_valid']):
    category = int(result['segment_category'][query])
    is_thing = bool(result['segment_is_thing'][query])
    segment_id = len(segments) + 1
    if is_thing:
      pixels = instance_map == query + 1
    else:
      pixels = (category_map == category) & (instance_map == 0)
    segment_map[pixels] = segment_id
    segments.append({'id': segment_id, 'isthing': is_thing,
                     'category_id': category - 1})
  return segment_map, segments


def model_endpoints(model, image_rgb: np.ndarray,
                    pixel_mean: Sequence[float] = PIXEL_MEAN,
                    pixel_std: Sequence[float] = PIXEL_STD
                    ) -> Dict[str, np.ndarray]:
  """Our model's intermediates on a uint8 [H, W, 3] RGB image, NCHW."""
  normalized = raw_outputs.normalize_uint8(image_rgb[None], pixel_mean,
                                           pixel_std)
  ends = model.endpoints(normalized)
  _, height, width, channels = ends['input_projection'].shape
  position = np.reshape(np.asarray(ends['position']),
                        [1, height, width, channels])
  ours = {
      'normalized_input': _nchw(normalized),
      'pixel_decoder_input_proj': _nchw(ends['input_projection']),
      'pixel_decoder_pos_embed': _nchw(position),
      'predictor_pos_embed': _nchw(position),
      'transformer_encoder_features': _nchw(np.reshape(
          np.asarray(ends['encoder_output']), [-1, height, width, channels])),
      'mask_features': _nchw(ends['mask_features']),
      'decoder_hs': np.asarray(ends['decoder_outputs']),
      'pred_logits': np.asarray(ends['class_logits']),
      'pred_masks': _nchw(ends['mask_logits']),
  }
  for level in range(2, 6):
    ours[f'res{level}'] = _nchw(ends[f'res{level}'])
  if 'aux_class_logits' in ends:
    for i, (logits, masks) in enumerate(zip(
        np.asarray(ends['aux_class_logits']),
        np.asarray(ends['aux_mask_logits']))):
      ours[f'aux_{i}_pred_logits'] = logits
      ours[f'aux_{i}_pred_masks'] = _nchw(masks)
  upsampled = tf.image.resize(ends['mask_logits'], image_rgb.shape[:2],
                              method='bilinear')
  ours['panoptic_mask_pred'] = np.transpose(np.asarray(upsampled)[0],
                                            (2, 0, 1))
  ours['upsampled_mask_logits'] = np.asarray(upsampled)
  ours['pred_logits_boosted'] = boost_logits(ours['pred_logits'])
  return ours


def compare(model, forward: Mapping[str, np.ndarray],
            object_mask_threshold: float = 0.8,
            overlap_threshold: float = 0.8,
            pixel_mean: Sequence[float] = PIXEL_MEAN,
            pixel_std: Sequence[float] = PIXEL_STD):
  """Compares our model with `forward.npz`.

  Returns:
    (rows, panoptic): a `Row` per array of `forward` we produce, and a dict
    `{'identical': bool, 'pixels_differing': int, 'segments': ours,
    'reference_segments': theirs}` for the boosted-logit panoptic result.
  """
  ours = model_endpoints(model, np.asarray(forward['image_rgb']), pixel_mean,
                         pixel_std)
  rows: List[Row] = []
  for name in forward.files if hasattr(forward, 'files') else forward:
    if name not in ours:
      continue
    reference = np.asarray(forward[name], np.float32)
    value = ours[name]
    if value.shape != reference.shape:
      raise ValueError(f'{name}: our shape {list(value.shape)} differs from '
                       f'the reference {list(reference.shape)}.')
    rows.append(Row(name, list(reference.shape),
                    float(np.max(np.abs(value - reference))),
                    float(np.max(np.abs(reference)))))
  segment_map, segments = reference_style_panoptic(
      ours['pred_logits_boosted'], ours['upsampled_mask_logits'],
      object_mask_threshold, overlap_threshold)
  reference_map = np.asarray(forward['panoptic_seg_boosted'])
  reference_segments = json.loads(str(forward['segments_info_boosted_json']))
  reference_segments = [
      {'id': s['id'], 'isthing': bool(s['isthing']),
       'category_id': int(s['category_id'])} for s in reference_segments]
  differing = int(np.sum(segment_map != reference_map))
  panoptic = {'identical': differing == 0 and segments == reference_segments,
              'pixels_differing': differing, 'segments': segments,
              'reference_segments': reference_segments}
  return rows, panoptic


def format_table(rows: Sequence[Row], panoptic=None,
                 tolerance: float = TOLERANCE) -> str:
  """The per-array comparison table as text."""
  lines = [f'{"array":32s} {"shape":18s} {"max |Δ|":>10s} {"max |ref|":>10s}'
           f' {"relative":>10s}  ok']
  for row in rows:
    shape = 'x'.join(str(d) for d in row.shape)
    lines.append(f'{row.name:32s} {shape:18s} {row.max_abs_diff:10.3e} '
                 f'{row.max_abs_ref:10.3e} {row.relative:10.3e}  '
                 f'{"yes" if row.passes(tolerance) else "NO"}')
  if panoptic is not None:
    lines.append(
        f'panoptic on boosted logits: '
        f'{"identical" if panoptic["identical"] else "DIFFERENT"} '
        f'({panoptic["pixels_differing"]} pixels differ; segments '
        f'{json.dumps(panoptic["segments"])}, reference '
        f'{json.dumps(panoptic["reference_segments"])})')
  return '\n'.join(lines)
