"""Times the PyTorch MaskFormer baseline: one train step and inference on CPU.

Train step = forward + criterion (Hungarian matching and losses of all 6
decoder outputs) + backward + gradient clipping + AdamW step, on one synthetic
batch (the same batch every step). Inference = eval-mode forward under
torch.inference_mode + panoptic inference at the input size. Each is warmed up
once, then run --repeats times; medians are reported, with each phase's own
median as the breakdown (so the phases need not add up exactly to the total).

Example (the reference R50 setup at 640², batch 1, 2 threads):
  .venv-torch/bin/python benchmarks/torch_baseline/bench_torch_step.py \\
      --image_size 640 --batch 1 --repeats 3 --threads 2
"""

import argparse
import os
import statistics
import time

import numpy as np
import torch
from torch import Tensor, nn

from maskformer_torch import (NUM_CLASSES, MaskFormer, SetCriterion, Target,
                              count_parameters, panoptic_inference)

PIXEL_MEAN = (123.675, 116.28, 103.53)
PIXEL_STD = (58.395, 57.12, 57.375)


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--image_size', type=int, default=640,
                      help='square input side S')
  parser.add_argument('--batch', type=int, default=1)
  parser.add_argument('--repeats', type=int, default=3,
                      help='timed runs after the one warm-up run')
  parser.add_argument('--threads', type=int, default=2,
                      help='torch.set_num_threads')
  parser.add_argument('--segments', type=int, default=15,
                      help='random segments painted per target')
  parser.add_argument('--kept_queries', type=int, default=15,
                      help='queries made confident before panoptic inference '
                      '(an untrained model keeps none, which would skip the '
                      "per-query work a trained model's inference does)")
  parser.add_argument('--seed', type=int, default=0)
  return parser.parse_args()


def confident_class_logits(class_logits: Tensor, kept_queries: int
                           ) -> Tensor:
  """Adds +20 to class (7·q mod K) of the first `kept_queries` queries.

  The same rule as `benchmarks/bench_model.py`, so both frameworks
  post-process the same number of kept queries.
  """
  boosted = class_logits.clone()
  for query in range(min(kept_queries, boosted.shape[-2])):
    boosted[..., query, (7 * query) % NUM_CLASSES] += 20.0
  return boosted


def synthetic_example(size: int, segments: int, rng: np.random.Generator
                      ) -> tuple[Tensor, Target]:
  """A normalised random RGB image and a panoptic target.

  The target paints `segments` random rectangles and ellipses (later ones on
  top) with class ids in [0, NUM_CLASSES); segments that end up fully covered
  are dropped and unpainted pixels are void (in no mask).
  """
  image = rng.uniform(0, 255, size=(3, size, size))
  image = (image - np.array(PIXEL_MEAN)[:, None, None]) / np.array(
      PIXEL_STD)[:, None, None]
  segment_map = np.full((size, size), -1)
  yy, xx = np.mgrid[:size, :size]
  for k in range(segments):
    cy, cx = rng.uniform(0, size, 2)
    hy, hx = rng.uniform(size / 16, size / 3, 2)
    if rng.random() < 0.5:
      region = (np.abs(yy - cy) <= hy) & (np.abs(xx - cx) <= hx)
    else:
      region = ((yy - cy) / hy) ** 2 + ((xx - cx) / hx) ** 2 <= 1
    segment_map[region] = k
  present = [k for k in range(segments) if (segment_map == k).any()]
  masks = np.stack([segment_map == k for k in present])
  labels = rng.integers(0, NUM_CLASSES, len(present))
  return (torch.as_tensor(image, dtype=torch.float32),
          Target(torch.as_tensor(labels, dtype=torch.int64),
                 torch.as_tensor(masks, dtype=torch.float32)))


def build_optimizer(model: MaskFormer) -> torch.optim.AdamW:
  """AdamW as the reference: lr 1e-4, wd 1e-4, backbone lr × 0.1.

  Like detectron2's build_optimizer (WEIGHT_DECAY_NORM = WEIGHT_DECAY_EMBED
  = 0), norm and embedding parameters get no weight decay.
  """
  base_lr, weight_decay, backbone_multiplier = 1e-4, 1e-4, 0.1
  no_decay_types = (nn.LayerNorm, nn.GroupNorm, nn.Embedding)
  groups: dict[tuple[float, float], list[nn.Parameter]] = {}
  for module_name, module in model.named_modules():
    for param in module.parameters(recurse=False):
      lr = base_lr * (backbone_multiplier
                      if module_name.startswith('backbone.') else 1.0)
      wd = 0.0 if isinstance(module, no_decay_types) else weight_decay
      groups.setdefault((lr, wd), []).append(param)
  return torch.optim.AdamW(
      [{'params': p, 'lr': lr, 'weight_decay': wd}
       for (lr, wd), p in groups.items()], lr=base_lr)


TRAIN_PHASES = ('forward', 'matching', 'losses', 'backward',
                'clip + AdamW step')


def train_step(model: MaskFormer, criterion: SetCriterion,
               optimizer: torch.optim.Optimizer, images: Tensor,
               targets: list[Target], clip_norm: float = 0.01
               ) -> tuple[float, dict[str, float]]:
  """One training step; returns the loss and each phase's seconds.

  CPU ops run synchronously, so wall-clock marks between phases are exact.
  """
  marks = [time.perf_counter()]
  optimizer.zero_grad(set_to_none=True)
  class_logits, mask_logits = model(images)
  marks.append(time.perf_counter())
  indices = criterion.match(class_logits, mask_logits, targets)
  marks.append(time.perf_counter())
  loss, _ = criterion.losses(class_logits, mask_logits, targets, indices)
  marks.append(time.perf_counter())
  loss.backward()
  marks.append(time.perf_counter())
  torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
  optimizer.step()
  marks.append(time.perf_counter())
  times = {phase: b - a
           for phase, a, b in zip(TRAIN_PHASES, marks[:-1], marks[1:])}
  times['criterion'] = times['matching'] + times['losses']
  times['total'] = marks[-1] - marks[0]
  return loss.item(), times


def inference(model: MaskFormer, images: Tensor, kept_queries: int
              ) -> tuple[int, dict[str, float]]:
  """Eval forward + panoptic inference of every image at the input size.

  Returns the number of panoptic segments found and each phase's seconds.
  """
  size = (images.shape[-2], images.shape[-1])
  with torch.inference_mode():
    start = time.perf_counter()
    class_logits, mask_logits = model(images)
    forward_end = time.perf_counter()
    class_logits = confident_class_logits(class_logits, kept_queries)
    results = [panoptic_inference(class_logits[-1, b], mask_logits[-1, b],
                                  size) for b in range(images.shape[0])]
    end = time.perf_counter()
  times = {'forward': forward_end - start, 'panoptic': end - forward_end,
           'total': end - start}
  return sum(len(info) for _, info in results), times


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
  return {key: statistics.median(run[key] for run in runs) for key in runs[0]}


def print_phase_table(rows: list[tuple[str, float]], repeats: int,
                      losses: tuple[float, ...],
                      segments_found: tuple[int, ...]) -> None:
  """The per-phase medians, the train-step losses and the segments found
  (the table both peer benchmarks print)."""
  width = max(44, max(len(name) for name, _ in rows) + 2)
  print(f'  warm-up 1, then median of {repeats} repeats '
        '(each row is its own median)')
  print()
  print(f'  {"phase":<{width}}{"seconds":>9}')
  print(f'  {"-" * (width + 9)}')
  for name, seconds in rows:
    print(f'  {name:<{width}}{seconds:>9.3f}')
  print()
  print('  train-step losses (warm-up first): '
        + ', '.join(f'{value:.3f}' for value in losses))
  print(f'  panoptic segments found per inference run: {list(segments_found)}')


def main() -> None:
  args = _parse_args()
  torch.set_num_threads(args.threads)
  torch.manual_seed(args.seed)
  rng = np.random.default_rng(args.seed)
  examples = [synthetic_example(args.image_size, args.segments, rng)
              for _ in range(args.batch)]
  images = torch.stack([image for image, _ in examples])
  targets = [target for _, target in examples]
  model = MaskFormer()
  criterion = SetCriterion()
  optimizer = build_optimizer(model)

  model.train()
  losses, train_runs = zip(*(
      train_step(model, criterion, optimizer, images, targets)
      for _ in range(1 + args.repeats)))
  train = _medians(list(train_runs[1:]))
  model.eval()
  segments_found, infer_runs = zip(*(
      inference(model, images, args.kept_queries)
      for _ in range(1 + args.repeats)))
  infer = _medians(list(infer_runs[1:]))

  rows = [
      ('train step (total)', train['total']),
      ('  forward (train mode, autograd on)', train['forward']),
      ('  criterion (6 outputs)', train['criterion']),
      ('    matching (6 x Hungarian, scipy)', train['matching']),
      ('    losses', train['losses']),
      ('  backward', train['backward']),
      ('  clip + AdamW step', train['clip + AdamW step']),
      ('inference (total)', infer['total']),
      ('  forward (eval, inference_mode)', infer['forward']),
      (f'  panoptic inference at {args.image_size}x{args.image_size}, '
       f'{args.kept_queries} kept', infer['panoptic']),
  ]
  print('PyTorch MaskFormer R50 + 6 Enc baseline (CPU, float32)')
  print(f'  torch {torch.__version__}, threads {torch.get_num_threads()} '
        f'(machine: {os.cpu_count()} cores)')
  print(f'  parameters {count_parameters(model):,}; image '
        f'{args.image_size}x{args.image_size}, batch {args.batch}, target '
        f'segments per image {[len(t.labels) for t in targets]}')
  print_phase_table(rows, args.repeats, losses, segments_found)

if __name__ == '__main__':
  main()
