"""Plain-PyTorch MaskFormer (Cheng et al. 2021), "R50 + 6 Enc", COCO panoptic.

A timing baseline for the TensorFlow model of this project, written from the
facts in docs/maskformer_reference.md (shared docs) and following the
structure of the reference detectron2 code: ResNet-50 with frozen batch norm,
the transformer-encoder pixel decoder, a 6-layer post-norm DETR decoder with
deep supervision, the Hungarian matcher, the set criterion and panoptic
inference. No torchvision or detectron2; only torch, numpy and scipy.

Running this file builds the model and prints its parameter count.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torch import Tensor, nn

NUM_CLASSES = 133  # COCO panoptic: 80 things (contiguous ids 0..79), 53 stuff.
NUM_THING_CLASSES = 80
REFERENCE_PARAMS = 45.04e6


# ----------------------------------------------------------------------------
# Backbone: ResNet-50.
# ----------------------------------------------------------------------------


class FrozenBatchNorm2d(nn.Module):
  """Batch norm with fixed statistics and affine (detectron2's FrozenBN).

  All four per-channel vectors are buffers, so they are neither trained nor
  counted as parameters.
  """

  def __init__(self, num_features: int, eps: float = 1e-5) -> None:
    super().__init__()
    self.eps = eps
    self.register_buffer('weight', torch.ones(num_features))
    self.register_buffer('bias', torch.zeros(num_features))
    self.register_buffer('running_mean', torch.zeros(num_features))
    self.register_buffer('running_var', torch.ones(num_features))

  def forward(self, x: Tensor) -> Tensor:
    scale = self.weight * (self.running_var + self.eps).rsqrt()
    shift = self.bias - self.running_mean * scale
    return x * scale.view(1, -1, 1, 1) + shift.view(1, -1, 1, 1)


def _conv_frozen_bn(in_channels: int, out_channels: int, kernel_size: int,
                    stride: int = 1) -> nn.Sequential:
  """Bias-free conv followed by frozen batch norm (msra-initialised)."""
  conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride,
                   padding=kernel_size // 2, bias=False)
  nn.init.kaiming_normal_(conv.weight, mode='fan_out', nonlinearity='relu')
  return nn.Sequential(conv, FrozenBatchNorm2d(out_channels))


class Bottleneck(nn.Module):
  """ResNet bottleneck, torchvision style (the stride is on the 3×3 conv)."""

  def __init__(self, in_channels: int, width: int, out_channels: int,
               stride: int) -> None:
    super().__init__()
    self.conv1 = _conv_frozen_bn(in_channels, width, 1)
    self.conv2 = _conv_frozen_bn(width, width, 3, stride)
    self.conv3 = _conv_frozen_bn(width, out_channels, 1)
    if stride != 1 or in_channels != out_channels:
      self.shortcut = _conv_frozen_bn(in_channels, out_channels, 1, stride)
    else:
      self.shortcut = nn.Identity()

  def forward(self, x: Tensor) -> Tensor:
    y = F.relu(self.conv1(x))
    y = F.relu(self.conv2(y))
    return F.relu(self.conv3(y) + self.shortcut(x))


class ResNet50(nn.Module):
  """ResNet-50 trunk returning res2..res5 (strides 4, 8, 16, 32)."""

  # (blocks, bottleneck width, output channels, first stride) per stage.
  STAGES = ((3, 64, 256, 1), (4, 128, 512, 2), (6, 256, 1024, 2),
            (3, 512, 2048, 2))

  def __init__(self) -> None:
    super().__init__()
    self.stem = nn.Sequential(
        _conv_frozen_bn(3, 64, 7, stride=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
    stages = []
    in_channels = 64
    for blocks, width, out_channels, stride in self.STAGES:
      layers = []
      for i in range(blocks):
        layers.append(Bottleneck(in_channels, width, out_channels,
                                 stride if i == 0 else 1))
        in_channels = out_channels
      stages.append(nn.Sequential(*layers))
    self.stages = nn.ModuleList(stages)

  def forward(self, x: Tensor) -> list[Tensor]:
    x = self.stem(x)
    features = []
    for stage in self.stages:
      x = stage(x)
      features.append(x)
    return features


# ----------------------------------------------------------------------------
# Transformer parts.
# ----------------------------------------------------------------------------


def sine_position_encoding(x: Tensor, num_pos_feats: int = 128,
                           temperature: float = 10000.0) -> Tensor:
  """DETR's normalised 2-D sine encoding for a [B, C, H, W] map.

  Returns [B, 2·num_pos_feats, H, W] (y features, then x features), with
  coordinates 1..H (1..W) divided by H (W) and scaled by 2π. Without a padding
  mask this equals the reference's cumsum-based computation.
  """
  b, _, h, w = x.shape
  eps, scale = 1e-6, 2 * math.pi
  y_embed = torch.arange(1, h + 1, dtype=torch.float32, device=x.device)
  x_embed = torch.arange(1, w + 1, dtype=torch.float32, device=x.device)
  y_embed = y_embed / (h + eps) * scale
  x_embed = x_embed / (w + eps) * scale
  dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=x.device)
  dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor')
                          / num_pos_feats)
  pos_y = y_embed[:, None] / dim_t  # [H, F]
  pos_x = x_embed[:, None] / dim_t  # [W, F]
  pos_y = torch.stack((pos_y[:, 0::2].sin(), pos_y[:, 1::2].cos()),
                      dim=2).flatten(1)
  pos_x = torch.stack((pos_x[:, 0::2].sin(), pos_x[:, 1::2].cos()),
                      dim=2).flatten(1)
  pos = torch.cat((pos_y[:, None, :].expand(h, w, num_pos_feats),
                   pos_x[None, :, :].expand(h, w, num_pos_feats)), dim=2)
  return pos.permute(2, 0, 1).unsqueeze(0).expand(b, -1, -1, -1)


class EncoderLayer(nn.Module):
  """Post-norm DETR encoder layer; positions are added to queries and keys."""

  def __init__(self, d_model: int, nhead: int, dim_feedforward: int,
               dropout: float) -> None:
    super().__init__()
    self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout,
                                           batch_first=True)
    self.linear1 = nn.Linear(d_model, dim_feedforward)
    self.linear2 = nn.Linear(dim_feedforward, d_model)
    self.norm1 = nn.LayerNorm(d_model)
    self.norm2 = nn.LayerNorm(d_model)
    self.dropout = nn.Dropout(dropout)
    self.dropout1 = nn.Dropout(dropout)
    self.dropout2 = nn.Dropout(dropout)

  def forward(self, src: Tensor, pos: Tensor) -> Tensor:
    q = src + pos
    attn = self.self_attn(q, q, src, need_weights=False)[0]
    src = self.norm1(src + self.dropout1(attn))
    ffn = self.linear2(self.dropout(F.relu(self.linear1(src))))
    return self.norm2(src + self.dropout2(ffn))


class DecoderLayer(nn.Module):
  """Post-norm DETR decoder layer: self-attention, cross-attention, FFN."""

  def __init__(self, d_model: int, nhead: int, dim_feedforward: int,
               dropout: float) -> None:
    super().__init__()
    self.self_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout,
                                           batch_first=True)
    self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout,
                                            batch_first=True)
    self.linear1 = nn.Linear(d_model, dim_feedforward)
    self.linear2 = nn.Linear(dim_feedforward, d_model)
    self.norm1 = nn.LayerNorm(d_model)
    self.norm2 = nn.LayerNorm(d_model)
    self.norm3 = nn.LayerNorm(d_model)
    self.dropout = nn.Dropout(dropout)
    self.dropout1 = nn.Dropout(dropout)
    self.dropout2 = nn.Dropout(dropout)
    self.dropout3 = nn.Dropout(dropout)

  def forward(self, tgt: Tensor, memory: Tensor, pos: Tensor,
              query_pos: Tensor) -> Tensor:
    q = tgt + query_pos
    attn = self.self_attn(q, q, tgt, need_weights=False)[0]
    tgt = self.norm1(tgt + self.dropout1(attn))
    attn = self.cross_attn(tgt + query_pos, memory + pos, memory,
                           need_weights=False)[0]
    tgt = self.norm2(tgt + self.dropout2(attn))
    ffn = self.linear2(self.dropout(F.relu(self.linear1(tgt))))
    return self.norm3(tgt + self.dropout3(ffn))


def _xavier_init_matrices(module: nn.Module) -> None:
  """DETR's transformer init: Xavier-uniform on every weight matrix."""
  for p in module.parameters():
    if p.dim() > 1:
      nn.init.xavier_uniform_(p)


# ----------------------------------------------------------------------------
# Pixel decoder and transformer decoder.
# ----------------------------------------------------------------------------


def _c2_xavier_conv(in_channels: int, out_channels: int, kernel_size: int,
                    bias: bool) -> nn.Conv2d:
  """Conv with detectron2's c2_xavier_fill (kaiming-uniform a=1, zero bias)."""
  conv = nn.Conv2d(in_channels, out_channels, kernel_size,
                   padding=kernel_size // 2, bias=bias)
  nn.init.kaiming_uniform_(conv.weight, a=1)
  if bias:
    nn.init.zeros_(conv.bias)
  return conv


def _conv_gn(in_channels: int, out_channels: int, kernel_size: int,
             relu: bool) -> nn.Sequential:
  """Bias-free conv + GroupNorm(32) (+ ReLU), as detectron2's Conv2d(norm=GN)."""
  layers: list[nn.Module] = [
      _c2_xavier_conv(in_channels, out_channels, kernel_size, bias=False),
      nn.GroupNorm(32, out_channels)]
  if relu:
    layers.append(nn.ReLU(inplace=True))
  return nn.Sequential(*layers)


class PixelDecoder(nn.Module):
  """TransformerEncoderPixelDecoder: encoder on res5, then an FPN to stride 4.

  Returns the mask features [B, mask_dim, H/4, W/4], the encoder output as a
  token sequence [B, H/32·W/32, conv_dim] (the transformer decoder's memory)
  and its positional encoding in the same layout.
  """

  def __init__(self, in_channels: tuple[int, ...] = (256, 512, 1024, 2048),
               conv_dim: int = 256, mask_dim: int = 256, enc_layers: int = 6,
               nhead: int = 8, dim_feedforward: int = 2048,
               dropout: float = 0.1) -> None:
    super().__init__()
    self.in_proj = _c2_xavier_conv(in_channels[-1], conv_dim, 1, bias=True)
    self.encoder = nn.ModuleList(
        EncoderLayer(conv_dim, nhead, dim_feedforward, dropout)
        for _ in range(enc_layers))
    _xavier_init_matrices(self.encoder)
    # The reference's "layer_4": output conv applied to the encoder output.
    self.layer_4 = _conv_gn(conv_dim, conv_dim, 3, relu=True)
    # Top-down over res4, res3, res2.
    self.lateral_convs = nn.ModuleList(
        _conv_gn(c, conv_dim, 1, relu=False) for c in in_channels[-2::-1])
    self.output_convs = nn.ModuleList(
        _conv_gn(conv_dim, conv_dim, 3, relu=True) for _ in in_channels[:-1])
    self.mask_features = _c2_xavier_conv(conv_dim, mask_dim, 3, bias=True)

  def forward(self, features: list[Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    x = self.in_proj(features[-1])
    b, c, h, w = x.shape
    pos = sine_position_encoding(x).flatten(2).transpose(1, 2)
    memory = x.flatten(2).transpose(1, 2)
    for layer in self.encoder:
      memory = layer(memory, pos)
    y = self.layer_4(memory.transpose(1, 2).reshape(b, c, h, w))
    for lateral_conv, output_conv, feature in zip(
        self.lateral_convs, self.output_convs, features[-2::-1]):
      lateral = lateral_conv(feature)
      y = output_conv(
          lateral + F.interpolate(y, size=lateral.shape[-2:], mode='nearest'))
    return self.mask_features(y), memory, pos


class TransformerDecoder(nn.Module):
  """DETR decoder with learned queries; returns every layer's normed output.

  The target starts at zero and the query embeddings act as query positions.
  The shared final LayerNorm is applied to each layer's output (deep
  supervision), giving [L, B, Q, d_model].
  """

  def __init__(self, num_queries: int = 100, d_model: int = 256,
               dec_layers: int = 6, nhead: int = 8,
               dim_feedforward: int = 2048, dropout: float = 0.1) -> None:
    super().__init__()
    self.layers = nn.ModuleList(
        DecoderLayer(d_model, nhead, dim_feedforward, dropout)
        for _ in range(dec_layers))
    self.norm = nn.LayerNorm(d_model)
    _xavier_init_matrices(self)
    self.query_embed = nn.Embedding(num_queries, d_model)

  def forward(self, memory: Tensor, pos: Tensor) -> Tensor:
    query_pos = self.query_embed.weight.unsqueeze(0).expand(
        memory.shape[0], -1, -1)
    tgt = torch.zeros_like(query_pos)
    outputs = []
    for layer in self.layers:
      tgt = layer(tgt, memory, pos, query_pos)
      outputs.append(self.norm(tgt))
    return torch.stack(outputs)


class MLP(nn.Module):
  """Linear layers with ReLU between them."""

  def __init__(self, in_dim: int, hidden_dim: int, out_dim: int,
               num_layers: int) -> None:
    super().__init__()
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    self.layers = nn.ModuleList(
        nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

  def forward(self, x: Tensor) -> Tensor:
    for i, layer in enumerate(self.layers):
      x = layer(x)
      if i < len(self.layers) - 1:
        x = F.relu(x)
    return x


class MaskFormer(nn.Module):
  """MaskFormer R50 + 6 encoder layers + 6 decoder layers, 100 queries.

  forward(images [B, 3, H, W]) returns, for all decoder layers (last = final
  output), class logits [L, B, Q, num_classes + 1] and mask logits
  [L, B, Q, H/4, W/4]. Like the reference (deep supervision on), the
  auxiliary outputs are computed in eval mode too.
  """

  def __init__(self, num_classes: int = NUM_CLASSES, num_queries: int = 100,
               hidden_dim: int = 256, mask_dim: int = 256) -> None:
    super().__init__()
    self.backbone = ResNet50()
    self.pixel_decoder = PixelDecoder(conv_dim=hidden_dim, mask_dim=mask_dim)
    # The memory already has hidden_dim channels, so (as in the reference
    # with ENFORCE_INPUT_PROJ off) there is no input projection.
    self.predictor = TransformerDecoder(num_queries, hidden_dim)
    self.class_embed = nn.Linear(hidden_dim, num_classes + 1)
    self.mask_embed = MLP(hidden_dim, hidden_dim, mask_dim, 3)

  def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
    features = self.backbone(images)
    mask_features, memory, pos = self.pixel_decoder(features)
    hs = self.predictor(memory, pos)
    class_logits = self.class_embed(hs)
    mask_logits = torch.einsum('lbqc,bchw->lbqhw', self.mask_embed(hs),
                               mask_features)
    return class_logits, mask_logits


def count_parameters(model: nn.Module) -> int:
  """Number of parameters (frozen-BN buffers excluded)."""
  return sum(p.numel() for p in model.parameters())


# ----------------------------------------------------------------------------
# Matching and losses.
# ----------------------------------------------------------------------------


@dataclass
class Target:
  """Ground truth of one image: N class ids and N binary masks [N, H, W]."""
  labels: Tensor
  masks: Tensor


def _pairwise_focal_cost(logits: Tensor, targets: Tensor, alpha: float = 0.25,
                         gamma: float = 2.0) -> Tensor:
  """Sigmoid focal loss of every prediction [Q, P] vs every target [N, P].

  Mean over the P pixels; returns [Q, N].
  """
  prob = logits.sigmoid()
  focal_pos = alpha * (1 - prob) ** gamma * F.binary_cross_entropy_with_logits(
      logits, torch.ones_like(logits), reduction='none')
  focal_neg = (1 - alpha) * prob ** gamma * F.binary_cross_entropy_with_logits(
      logits, torch.zeros_like(logits), reduction='none')
  cost = focal_pos @ targets.T + focal_neg @ (1 - targets).T
  return cost / logits.shape[1]


def _pairwise_dice_cost(logits: Tensor, targets: Tensor) -> Tensor:
  """Dice loss (+1 smoothing) of every prediction [Q, P] vs target [N, P]."""
  prob = logits.sigmoid()
  numerator = 2 * prob @ targets.T
  denominator = prob.sum(-1)[:, None] + targets.sum(-1)[None, :]
  return 1 - (numerator + 1) / (denominator + 1)


def sigmoid_focal_loss(logits: Tensor, targets: Tensor, num_masks: float,
                       alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
  """Focal loss of matched pairs [M, P]: mean over pixels, sum / num_masks."""
  prob = logits.sigmoid()
  ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
  p_t = prob * targets + (1 - prob) * (1 - targets)
  alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
  loss = alpha_t * ce * (1 - p_t) ** gamma
  return loss.mean(1).sum() / num_masks


def dice_loss(logits: Tensor, targets: Tensor, num_masks: float) -> Tensor:
  """Dice loss (+1 smoothing) of matched pairs [M, P], sum / num_masks."""
  prob = logits.sigmoid()
  numerator = 2 * (prob * targets).sum(-1)
  denominator = prob.sum(-1) + targets.sum(-1)
  return (1 - (numerator + 1) / (denominator + 1)).sum() / num_masks


Indices = list[tuple[Tensor, Tensor]]


class SetCriterion:
  """MaskFormer's HungarianMatcher + SetCriterion, summed over decoder layers.

  `match` and `losses` are separate so their times can be measured apart;
  calling the criterion does both and returns (total loss, per-term sums).
  """

  def __init__(self, num_classes: int = NUM_CLASSES,
               no_object_weight: float = 0.1, class_weight: float = 1.0,
               mask_weight: float = 20.0, dice_weight: float = 1.0) -> None:
    self.num_classes = num_classes
    self.class_weight = class_weight
    self.mask_weight = mask_weight
    self.dice_weight = dice_weight
    self.empty_weight = torch.ones(num_classes + 1)
    self.empty_weight[-1] = no_object_weight

  @torch.no_grad()
  def _match_one(self, class_logits: Tensor, mask_logits: Tensor,
                 target: Target) -> tuple[Tensor, Tensor]:
    """Optimal assignment for one image at the prediction resolution."""
    cost_class = -class_logits.softmax(-1)[:, target.labels]
    tgt = F.interpolate(target.masks[:, None], size=mask_logits.shape[-2:],
                        mode='nearest')[:, 0].flatten(1)
    out = mask_logits.flatten(1)
    cost = (self.class_weight * cost_class
            + self.mask_weight * _pairwise_focal_cost(out, tgt)
            + self.dice_weight * _pairwise_dice_cost(out, tgt))
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    return (torch.as_tensor(rows, dtype=torch.int64),
            torch.as_tensor(cols, dtype=torch.int64))

  def match(self, class_logits: Tensor, mask_logits: Tensor,
            targets: list[Target]) -> list[Indices]:
    """Per decoder layer, per image: (query indices, target indices)."""
    return [[self._match_one(class_logits[layer, b], mask_logits[layer, b], t)
             for b, t in enumerate(targets)]
            for layer in range(class_logits.shape[0])]

  def losses(self, class_logits: Tensor, mask_logits: Tensor,
             targets: list[Target], indices: list[Indices]
             ) -> tuple[Tensor, dict[str, Tensor]]:
    """Weighted total over decoder layers and the unweighted per-term sums."""
    num_masks = max(sum(len(t.labels) for t in targets), 1)
    # All targets of a batch share one (padded) size, as in the reference.
    target_size = targets[0].masks.shape[-2:]
    terms = {name: torch.zeros(())
             for name in ('loss_ce', 'loss_mask', 'loss_dice')}
    for layer, layer_indices in enumerate(indices):
      target_classes = torch.full(class_logits.shape[1:3], self.num_classes,
                                  dtype=torch.int64)
      for b, (i, j) in enumerate(layer_indices):
        target_classes[b, i] = targets[b].labels[j]
      terms['loss_ce'] = terms['loss_ce'] + F.cross_entropy(
          class_logits[layer].transpose(1, 2), target_classes, self.empty_weight)

      src = torch.cat([mask_logits[layer, b, i]
                       for b, (i, _) in enumerate(layer_indices)])
      tgt = torch.cat([targets[b].masks[j]
                       for b, (_, j) in enumerate(layer_indices)])
      src = F.interpolate(src[:, None], size=target_size,
                          mode='bilinear', align_corners=False)[:, 0]
      src, tgt = src.flatten(1), tgt.flatten(1)
      terms['loss_mask'] = terms['loss_mask'] + sigmoid_focal_loss(
          src, tgt, num_masks)
      terms['loss_dice'] = terms['loss_dice'] + dice_loss(src, tgt, num_masks)
    total = (self.class_weight * terms['loss_ce']
             + self.mask_weight * terms['loss_mask']
             + self.dice_weight * terms['loss_dice'])
    return total, terms

  def __call__(self, class_logits: Tensor, mask_logits: Tensor,
               targets: list[Target]) -> tuple[Tensor, dict[str, Tensor]]:
    indices = self.match(class_logits, mask_logits, targets)
    return self.losses(class_logits, mask_logits, targets, indices)


# ----------------------------------------------------------------------------
# Panoptic inference.
# ----------------------------------------------------------------------------


def panoptic_inference(class_logits: Tensor, mask_logits: Tensor,
                       image_size: tuple[int, int],
                       object_mask_threshold: float = 0.8,
                       overlap_threshold: float = 0.8,
                       num_thing_classes: int = NUM_THING_CLASSES
                       ) -> tuple[Tensor, list[dict[str, int | bool]]]:
  """Panoptic segmentation of one image from its final-layer outputs.

  class_logits [Q, K+1] and mask_logits [Q, h, w]. The masks are upsampled
  bilinearly to image_size first (the input equals the original image here,
  so the reference's crop and resize are no-ops). Returns the segment-id map
  [H, W] (0 = void) and the segments' id, category_id and isthing.
  """
  mask_logits = F.interpolate(mask_logits[None], size=image_size,
                              mode='bilinear', align_corners=False)[0]
  scores, labels = class_logits.softmax(-1).max(-1)
  masks = mask_logits.sigmoid()
  num_classes = class_logits.shape[-1] - 1
  keep = labels.ne(num_classes) & (scores > object_mask_threshold)
  cur_scores, cur_classes, cur_masks = scores[keep], labels[keep], masks[keep]
  panoptic_seg = torch.zeros(image_size, dtype=torch.int32)
  segments_info: list[dict[str, int | bool]] = []
  if cur_masks.shape[0] == 0:
    return panoptic_seg, segments_info

  cur_mask_ids = (cur_scores.view(-1, 1, 1) * cur_masks).argmax(0)
  stuff_segment_ids: dict[int, int] = {}
  segment_id = 0
  for k in range(cur_classes.shape[0]):
    pred_class = int(cur_classes[k])
    isthing = pred_class < num_thing_classes
    mask = cur_mask_ids == k
    mask_area = int(mask.sum())
    original_area = int((cur_masks[k] >= 0.5).sum())
    if mask_area == 0 or original_area == 0:
      continue
    if mask_area / original_area < overlap_threshold:
      continue
    if not isthing:
      if pred_class in stuff_segment_ids:
        panoptic_seg[mask] = stuff_segment_ids[pred_class]
        continue
      stuff_segment_ids[pred_class] = segment_id + 1
    segment_id += 1
    panoptic_seg[mask] = segment_id
    segments_info.append(
        {'id': segment_id, 'category_id': pred_class, 'isthing': isthing})
  return panoptic_seg, segments_info


if __name__ == '__main__':
  n = count_parameters(MaskFormer())
  print(f'MaskFormer R50 + 6 Enc: {n:,} parameters '
        f'({(n / REFERENCE_PARAMS - 1) * 100:+.2f}% vs the reference 45.04M)')
