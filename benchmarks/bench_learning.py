r"""Learning benchmark: val PQ of `maskformer_tiny` on the synthetic sample.

Runs what the pipeline's Trainer runs, on CPU: writes the synthetic COCO
panoptic sample (`panoptic_data.sample_data`, default 64 train / 16 val images
of 128×128), transforms both splits with tf.Transform on Beam
(`transform_module.beam_runner`), then calls the Trainer's
`trainer_module.run_fn.run_fn` (TF Model Garden train_and_eval with an
evaluation every --eval_every steps, then the SavedModel export). PQ on the
val split at each evaluation is read back from the TensorBoard summaries and
written to OUTPUT/learning_curve.csv and OUTPUT/learning_curve.png.

  TF_USE_LEGACY_KERAS=1 .venv/bin/python benchmarks/bench_learning.py \
      --output_dir=/tmp/bench_learning --eval_every=50

Elapsed times are measured from the start of training (after the sample and
the transform are written). --params_override (YAML/JSON) changes the
experiment like the pipeline's `params_override`.
"""

import argparse
import csv
import json
import os
import pathlib
import shutil
import sys
import time
from typing import Dict, List

os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_REPO_ROOT))

import tensorflow as tf
from tfx.components.trainer import fn_args_utils
import yaml

from panoptic_data import sample_data
from trainer_module.run_fn import run_fn
from transform_module import beam_runner

EVAL_METRICS = ('pq', 'pq_things', 'pq_stuff', 'sq', 'rq', 'validation_loss')
CSV_NAME = 'learning_curve.csv'
PNG_NAME = 'learning_curve.png'
PQ_TARGET = 0.5


def _parse_args() -> argparse.Namespace:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--output_dir', required=True,
                      help='Output directory (emptied first).')
  parser.add_argument('--num_train', type=int, default=64)
  parser.add_argument('--num_val', type=int, default=16)
  parser.add_argument('--image_size', type=int, default=128,
                      help='Side of the synthetic images.')
  parser.add_argument('--output_size', type=int, default=128,
                      help='Transform output size S.')
  parser.add_argument('--num_segment_slots', type=int, default=16)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--experiment', default='maskformer_tiny')
  parser.add_argument('--train_steps', type=int, default=None,
                      help="Training steps (default: the experiment's).")
  parser.add_argument('--eval_every', type=int, default=50,
                      help='Evaluate on the val split every this many steps.')
  parser.add_argument('--params_override', default='',
                      help='YAML/JSON overriding the experiment params.')
  return parser.parse_args()


def _scalar_events(event_dir: pathlib.Path) -> Dict[str, List[tuple]]:
  """{tag: [(step, wall_time, value), ...]} of the summaries in a directory."""
  values: Dict[str, List[tuple]] = {}
  for path in sorted(event_dir.glob('events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(str(path)):
      for value in event.summary.value:
        number = (float(tf.make_ndarray(value.tensor))
                  if value.HasField('tensor') else value.simple_value)
        values.setdefault(value.tag, []).append(
            (int(event.step), event.wall_time, number))
  return values


def _write_curve(rows: List[Dict[str, float]], train_loss: List[tuple],
                 output_dir: pathlib.Path) -> None:
  """Writes the CSV and the PQ / loss curve PNG."""
  with open(output_dir / CSV_NAME, 'w', newline='') as f:
    writer = csv.DictWriter(f, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
  import matplotlib
  matplotlib.use('Agg')
  from matplotlib import pyplot
  figure, (pq_axis, loss_axis) = pyplot.subplots(1, 2, figsize=(11, 4))
  steps = [row['step'] for row in rows]
  for name in ('pq', 'pq_things', 'pq_stuff'):
    pq_axis.plot(steps, [row[name] for row in rows], marker='o', label=name)
  pq_axis.axhline(PQ_TARGET, color='grey', linestyle='--', linewidth=1)
  pq_axis.set_xlabel('training step')
  pq_axis.set_ylabel('val PQ')
  pq_axis.set_ylim(0.0, 1.0)
  pq_axis.legend()
  minutes = [row['elapsed_min'] for row in rows]
  for step, minute in zip(steps, minutes):
    pq_axis.annotate(f'{minute:.1f} min', (step, 0.02), fontsize=7,
                     rotation=90, ha='center')
  loss_axis.plot([step for step, _, _ in train_loss],
                 [value for _, _, value in train_loss])
  loss_axis.set_xlabel('training step')
  loss_axis.set_ylabel('training total_loss')
  loss_axis.set_yscale('log')
  figure.suptitle('maskformer_tiny on the synthetic sample (CPU)')
  figure.tight_layout()
  figure.savefig(output_dir / PNG_NAME, dpi=100)


def main() -> None:
  args = _parse_args()
  output_dir = pathlib.Path(args.output_dir).resolve()
  shutil.rmtree(output_dir, ignore_errors=True)
  output_dir.mkdir(parents=True)

  record_dir = sample_data.make_sample_tfrecords(
      output_dir / 'sample', args.num_train, args.num_val, args.image_size,
      args.seed)
  transform_config = {'output_size': args.output_size,
                      'num_segment_slots': args.num_segment_slots}
  for split in ('train', 'val'):
    beam_runner.run_transform(str(record_dir / f'{split}-*'),
                              str(output_dir / f'transform_{split}'),
                              transform_config)

  params_override = yaml.safe_load(args.params_override) or {}
  params_override.setdefault('trainer', {})['validation_interval'] = (
      args.eval_every)
  model_run_dir = output_dir / 'model_run'
  fn_args = fn_args_utils.FnArgs(
      train_files=[str(output_dir / 'transform_train' /
                       f'{beam_runner.TRANSFORMED_EXAMPLES_PREFIX}*')],
      eval_files=[str(output_dir / 'transform_val' /
                      f'{beam_runner.TRANSFORMED_EXAMPLES_PREFIX}*')],
      transform_output=str(output_dir / 'transform_train'),
      train_steps=args.train_steps,
      model_run_dir=str(model_run_dir),
      serving_model_dir=str(output_dir / 'serving_model'),
      custom_config={
          'experiment': args.experiment,
          'materialized': True,
          'params_override': json.dumps(params_override),
          'output_size': args.output_size,
          'num_segment_slots': args.num_segment_slots,
      })
  start = time.time()
  run_fn(fn_args)
  total_s = time.time() - start

  evaluations = _scalar_events(model_run_dir / 'validation')
  train_loss = _scalar_events(model_run_dir / 'train').get('total_loss', [])
  rows = []
  for index, (step, wall_time, _) in enumerate(evaluations['pq']):
    row = {'step': step, 'elapsed_min': round((wall_time - start) / 60, 2)}
    for name in EVAL_METRICS:
      row[name] = round(evaluations[name][index][2], 4)
    rows.append(row)
  _write_curve(rows, train_loss, output_dir)

  print(f'{"step":>6} {"min":>6} ' + ' '.join(f'{n:>9}' for n in EVAL_METRICS))
  for row in rows:
    print(f'{row["step"]:>6} {row["elapsed_min"]:>6.1f} ' +
          ' '.join(f'{row[n]:>9.4f}' for n in EVAL_METRICS))
  reached = [row for row in rows if row['pq'] >= PQ_TARGET]
  print(f'Training + evaluations + export: {total_s / 60:.1f} min.')
  print(f'PQ >= {PQ_TARGET}: ' + (
      f'step {reached[0]["step"]} after {reached[0]["elapsed_min"]:.1f} min'
      if reached else 'not reached'))
  print(f'CSV: {output_dir / CSV_NAME}\nPNG: {output_dir / PNG_NAME}')


if __name__ == '__main__':
  main()
