"""Times Hugging Face transformers' MaskFormer: one train step and inference.

The peer a user would pick instead of this project: `transformers`'
`MaskFormerForInstanceSegmentation` with a ResNet-50 backbone (transformers'
own `ResNetConfig`), 133 COCO panoptic classes, 100 queries, a 6-layer DETR
decoder and `use_auxiliary_loss=True` (losses of all 6 decoder outputs),
random weights (no downloads).

Train step = forward with `mask_labels` / `class_labels` (HF computes the
Hungarian matching and the losses inside the forward) + backward + gradient
clipping (L2 norm 0.01) + AdamW (lr 1e-4, wd 1e-4, backbone lr x 0.1, no
decay on norms/embeddings), on the same synthetic image and target as
`benchmarks/torch_baseline` (`--segments` random rectangles/ellipses).
Inference = eval forward under `torch.inference_mode` + the image
processor's `post_process_panoptic_segmentation` (threshold 0.8, overlap 0.8,
stuff classes fused, output at the input size). As in the other benchmarks,
the first `--kept_queries` queries get +20 on class 7q mod 133 so that
post-processing has the work of a trained model's ~15 kept segments.

Each is warmed up once, then run --repeats times; medians are printed.

Example (640², batch 1, 2 threads):
  .venv-hf/bin/python benchmarks/hf_baseline/bench_hf_step.py \\
      --image_size 640 --batch 1 --repeats 2 --threads 2
"""

import argparse
import os
import pathlib
import sys
import time

import numpy as np
import torch
from torch import nn
import transformers
from transformers import DetrConfig
from transformers import MaskFormerConfig
from transformers import MaskFormerForInstanceSegmentation
from transformers import MaskFormerImageProcessorPil
from transformers import ResNetConfig

# The synthetic example, the confident-query rule, the medians and the result
# table are the PyTorch baseline's own (one definition for both baselines).
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] /
                       'torch_baseline'))
from bench_torch_step import _medians
from bench_torch_step import confident_class_logits
from bench_torch_step import print_phase_table
from bench_torch_step import synthetic_example
from maskformer_torch import NUM_CLASSES

NUM_THING_CLASSES = 80  # COCO panoptic: contiguous ids 0-79 things, 80-132 stuff.
BACKBONE_PREFIX = 'model.pixel_level_module.encoder.'


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image_size', type=int, default=640)
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=2,
                      help='timed runs after the one warm-up run')
  parser.add_argument('--threads', type=int, default=2,
                      help='torch.set_num_threads')
  parser.add_argument('--segments', type=int, default=15)
  parser.add_argument('--kept_queries', type=int, default=15)
  parser.add_argument('--trainable_bn', action='store_true',
                      help='train the backbone batch norm (default: frozen, '
                      'as the reference and our model)')
  parser.add_argument('--skip_train', action='store_true',
                      help='time inference only (e.g. batch-8 throughput)')
  parser.add_argument('--top', type=int, default=0,
                      help='then list the N ops with the largest self CPU '
                      'time of one train step and one inference '
                      '(torch.profiler)')
  parser.add_argument('--seed', type=int, default=0)
  return parser.parse_args()


def build_model() -> MaskFormerForInstanceSegmentation:
  """HF MaskFormer R50 as close to the reference as its config allows."""
  backbone = ResNetConfig(
      depths=[3, 4, 6, 3], hidden_sizes=[256, 512, 1024, 2048],
      embedding_size=64, layer_type='bottleneck', hidden_act='relu',
      out_features=['stage1', 'stage2', 'stage3', 'stage4'])
  decoder = DetrConfig(
      d_model=256, decoder_layers=6, decoder_attention_heads=8,
      decoder_ffn_dim=2048, dropout=0.1, num_queries=100,
      encoder_layers=6, encoder_attention_heads=8, encoder_ffn_dim=2048)
  config = MaskFormerConfig(
      backbone_config=backbone, decoder_config=decoder,
      fpn_feature_size=256, mask_feature_size=256, num_labels=NUM_CLASSES,
      no_object_weight=0.1, use_auxiliary_loss=True, cross_entropy_weight=1.0,
      mask_weight=20.0, dice_weight=1.0)
  return MaskFormerForInstanceSegmentation(config)


def freeze_backbone_batch_norm(model: nn.Module) -> int:
  """Backbone batch norm as detectron2's FrozenBN: eval mode, no gradients.

  Returns the number of frozen batch-norm layers.
  """
  frozen = 0
  for name, module in model.named_modules():
    if (name + '.').startswith(BACKBONE_PREFIX) and isinstance(
        module, nn.BatchNorm2d):
      module.eval()
      module.requires_grad_(False)
      frozen += 1
  return frozen


def build_optimizer(model: nn.Module) -> torch.optim.AdamW:
  """AdamW as the reference (and `torch_baseline.build_optimizer`)."""
  base_lr, weight_decay, backbone_multiplier = 1e-4, 1e-4, 0.1
  no_decay_types = (nn.LayerNorm, nn.GroupNorm, nn.Embedding,
                    nn.BatchNorm2d)
  groups = {}
  for module_name, module in model.named_modules():
    for param in module.parameters(recurse=False):
      if not param.requires_grad:
        continue
      lr = base_lr * (backbone_multiplier
                      if (module_name + '.').startswith(BACKBONE_PREFIX)
                      else 1.0)
      wd = 0.0 if isinstance(module, no_decay_types) else weight_decay
      groups.setdefault((lr, wd), []).append(param)
  return torch.optim.AdamW(
      [{'params': p, 'lr': lr, 'weight_decay': wd}
       for (lr, wd), p in groups.items()], lr=base_lr)


def train_step(model, optimizer, images, mask_labels, class_labels,
               clip_norm: float = 0.01):
  """One training step; returns the loss and each phase's seconds."""
  marks = [time.perf_counter()]
  optimizer.zero_grad(set_to_none=True)
  # output_hidden_states=True: transformers 5.24 stacks the decoder's
  # hidden states for use_auxiliary_loss only when they are requested (it
  # raises otherwise); they are returned anyway, so this costs nothing.
  outputs = model(pixel_values=images, mask_labels=mask_labels,
                  class_labels=class_labels, output_hidden_states=True,
                  output_auxiliary_logits=True)
  marks.append(time.perf_counter())
  outputs.loss.backward()
  marks.append(time.perf_counter())
  torch.nn.utils.clip_grad_norm_(
      [p for p in model.parameters() if p.requires_grad], clip_norm)
  optimizer.step()
  marks.append(time.perf_counter())
  phases = ('forward + matching + losses', 'backward', 'clip + AdamW step')
  times = {phase: b - a for phase, a, b in zip(phases, marks[:-1], marks[1:])}
  times['total'] = marks[-1] - marks[0]
  times['outputs'] = 1 + len(outputs.auxiliary_logits or [])
  return outputs.loss.item(), times


def inference(model, processor, images, kept_queries: int):
  """Eval forward + `post_process_panoptic_segmentation` at the input size."""
  size = (images.shape[-2], images.shape[-1])
  stuff = set(range(NUM_THING_CLASSES, NUM_CLASSES))
  with torch.inference_mode():
    start = time.perf_counter()
    outputs = model(pixel_values=images, output_hidden_states=True)
    forward_end = time.perf_counter()
    outputs.class_queries_logits = confident_class_logits(
        outputs.class_queries_logits, kept_queries)
    results = processor.post_process_panoptic_segmentation(
        outputs, threshold=0.8, overlap_mask_area_threshold=0.8,
        label_ids_to_fuse=stuff, target_sizes=[size] * images.shape[0])
    end = time.perf_counter()
  times = {'forward': forward_end - start, 'panoptic': end - forward_end,
           'total': end - start}
  return sum(len(result['segments_info']) for result in results), times


def main() -> None:
  args = _parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  examples = [synthetic_example(args.image_size, args.segments, rng)
              for _ in range(args.batch)]
  images = torch.stack([image for image, _ in examples])
  mask_labels = [target.masks for _, target in examples]
  class_labels = [target.labels for _, target in examples]
  model = build_model()
  processor = MaskFormerImageProcessorPil()

  model.train()
  frozen = 0 if args.trainable_bn else freeze_backbone_batch_norm(model)
  optimizer = build_optimizer(model)
  rows, losses = [], ()
  if not args.skip_train:
    losses, train_runs = zip(*(
        train_step(model, optimizer, images, mask_labels, class_labels)
        for _ in range(1 + args.repeats)))
    train = _medians(list(train_runs[1:]))
    print(f'  decoder outputs with losses: {int(train["outputs"])}')
    rows += [('train step (total)', train['total'])]
    rows += [(f'  {phase}', train[phase]) for phase in (
        'forward + matching + losses', 'backward', 'clip + AdamW step')]
  model.eval()
  segments_found, infer_runs = zip(*(
      inference(model, processor, images, args.kept_queries)
      for _ in range(1 + args.repeats)))
  infer = _medians(list(infer_runs[1:]))

  num_params = sum(p.numel() for p in model.parameters())
  rows += [('inference (total)', infer['total']),
           ('  forward (eval, inference_mode)', infer['forward']),
           (f'  post_process_panoptic_segmentation, {args.kept_queries} '
            'kept', infer['panoptic'])]
  print('HF transformers MaskFormerForInstanceSegmentation R50 (CPU, float32)')
  print(f'  transformers {transformers.__version__}, torch {torch.__version__}'
        f', threads {torch.get_num_threads()} (machine: {os.cpu_count()} '
        'cores)')
  print(f'  parameters {num_params:,} (incl. frozen batch norm: {frozen} '
        f'layers); image {args.image_size}x{args.image_size}, batch '
        f'{args.batch}, target segments per image '
        f'{[len(labels) for labels in class_labels]}')
  print_phase_table(rows, args.repeats, losses, segments_found)
  print(f'  inference throughput: {args.batch / infer["total"]:.2f} '
        'images/s')
  if args.top:
    if not args.skip_train:
      model.train()
      freeze_backbone_batch_norm(model)
      _print_top_ops('train step', args.top, lambda: train_step(
          model, optimizer, images, mask_labels, class_labels))
    model.eval()
    _print_top_ops('inference', args.top, lambda: inference(
        model, processor, images, args.kept_queries))


def _print_top_ops(title: str, count: int, run) -> None:
  """The `count` ops with the largest self CPU time of one `run()`."""
  with torch.profiler.profile(
      activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
    run()
  events = sorted(profile.key_averages(), key=lambda e: -e.self_cpu_time_total)
  print(f'{title}: top {count} ops by self CPU time (s per step)')
  for event in events[:count]:
    print(f'  {event.key[-60:]:<60}{event.self_cpu_time_total / 1e6:>9.3f}')



if __name__ == '__main__':
  main()
