"""`maskformer-tfx`: command-line entry point (the top layer: it may import
`runners` and `tfx_pipeline`; nothing imports it).

Importing the `tfx_pipeline` package selects Keras 2 (TF_USE_LEGACY_KERAS=1)
before TensorFlow loads; heavy imports happen inside the subcommands so that
`--help` is instant.
"""

import argparse
import datetime
import json
import logging
import os
import pathlib
import sys
import warnings
from typing import Optional, Sequence

# Keep TensorFlow's C++ start-up chatter and Google client libraries'
# Python-version notices off the terminal (run logs keep the rest).
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
warnings.filterwarnings('ignore', category=FutureWarning, module='google')

from runners import tf_startup

# Whatever of these imports TensorFlow: its C++ start-up lines are dropped.
with tf_startup.startup_lines_filtered():
  from runners import vertex_runner
  from runners.vertex_rehearsal import cli as vertex_rehearsal_cli
  from tfx_pipeline import cli_args
  from tfx_pipeline import config as pipeline_config
  from tfx_pipeline import import_weights
  from tfx_pipeline import evaluate_coco
  from tfx_pipeline import predict
  from tfx_pipeline import report
  from tfx_pipeline import spans

DEFAULT_OUTPUTS = pathlib.Path('outputs')
DEFAULT_PIPELINE_ROOT = DEFAULT_OUTPUTS / 'pipeline'
DEFAULT_SAMPLE_DIR = DEFAULT_OUTPUTS / 'sample'
SAMPLE_MARKER = 'SAMPLE_COMPLETE.json'


def _add_make_sample(subparsers) -> None:
  parser = subparsers.add_parser(
      'make-sample',
      help='Write a synthetic COCO panoptic sample and its TFMG TFRecords.',
      description=(
          'Writes DIR/coco/{train,val}/images/*.jpg, DIR/coco/{train,val}/'
          'panoptic/*.png and DIR/coco/annotations/panoptic_{train,val}.json '
          'in the exact COCO panoptic format (133 real categories), then '
          'converts them with TF Model Garden\'s create_coco_tf_record into '
          'DIR/tfrecords/train-*.tfrecord and val-*.tfrecord. Deterministic '
          'for a seed.'))
  parser.add_argument('--output', required=True, type=pathlib.Path,
                      help='Output directory (created).')
  parser.add_argument('--num-train', type=cli_args.positive_int, default=64,
                      help='Train images (default 64).')
  parser.add_argument('--num-val', type=cli_args.positive_int, default=16,
                      help='Val images (default 16).')
  parser.add_argument('--image-size', type=cli_args.positive_int, default=128,
                      help='Square image side in pixels (default 128).')
  parser.add_argument('--seed', type=int, default=0, help='Random seed (default 0).')
  parser.set_defaults(handler=_make_sample)


def _add_data_flags(parser: argparse.ArgumentParser) -> None:
  """Flags shared by `run` and `validate`."""
  parser.add_argument('--data', type=str, default=None,
                      help='Directory (local or gs://) of TF Model Garden COCO '
                      'panoptic TFRecords (default: the synthetic sample).')
  parser.add_argument('--pipeline-root', type=str, default=str(DEFAULT_PIPELINE_ROOT),
                      help='Artifacts, ML Metadata (metadata.sqlite) and logs '
                      f'(default {DEFAULT_PIPELINE_ROOT}).')
  parser.add_argument('--train-pattern', default='train-*',
                      help="File pattern of the train split under --data (default 'train-*').")
  parser.add_argument('--eval-pattern', default='val-*',
                      help="File pattern of the eval split under --data (default 'val-*').")
  parser.add_argument('--span', type=int, default=None, metavar='N',
                      help='With split patterns naming the span ({SPAN}, '
                      "e.g. --train-pattern 'span-{SPAN}/train-*'), read "
                      'span N (default: the latest span of both splits).')
  parser.add_argument('--beam-arg', action='append', default=None,
                      dest='beam_args', metavar='ARG',
                      help='Beam pipeline argument, repeatable (default: '
                      'in-process DirectRunner).')
  parser.add_argument('--enable-cache', action='store_true',
                      help='Reuse outputs of identical earlier executions.')
  parser.add_argument('--skip-input-check', action='store_true',
                      help='Start without first reading every input TFRecord '
                      "to check its framing and checksums (the check's cost "
                      'is one sequential read of the input; without it a '
                      "damaged file fails ExampleGen with Beam's message, "
                      'which does not name the file).')


def _add_validate(subparsers) -> None:
  parser = subparsers.add_parser(
      'validate',
      help='Run only the data half: ExampleGen to ExampleValidator.',
      description=(
          'Runs ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> '
          'ExampleValidator -> DataValidationGate with LocalDagRunner and '
          'fails, naming each anomaly and feature, when the data is bad.'))
  _add_data_flags(parser)
  parser.set_defaults(handler=_run, data_validation_only=True)


def _add_run(subparsers) -> None:
  parser = subparsers.add_parser(
      'run',
      help='Run the pipeline locally (LocalDagRunner, SQLite ML Metadata).',
      description=(
          'Runs ExampleGen -> StatisticsGen -> ImportSchemaGen -> '
          'ExampleValidator -> DataValidationGate and the components after '
          'it with LocalDagRunner. Prints each component as it starts and '
          'finishes with its output locations; TF/absl/Beam logs go to '
          'PIPELINE_ROOT/logs/. Without --data, a synthetic sample is '
          'generated once under outputs/sample and reused.'))
  _add_data_flags(parser)
  parser.add_argument('--experiment', default=None,
                      help='TF Model Garden experiment the Trainer runs '
                      '(default maskformer_tiny).')
  parser.add_argument('--config-file', '--config_file', action='append',
                      default=None, dest='config_files', metavar='FILE.yaml',
                      help='TF Model Garden experiment config (YAML) '
                      'overriding the experiment params; repeatable, applied '
                      'in order before --params-override (TFMG\'s '
                      '--config_file).')
  parser.add_argument('--params-override', '--params_override', default='',
                      help='Inline YAML/JSON, a.b=c,... pairs or a YAML file '
                      'overriding the experiment params after --config-file '
                      '(TFMG\'s --params_override).')
  parser.add_argument('--train-steps', type=cli_args.positive_int, default=None,
                      help='Trainer steps (default: the experiment\'s).')
  parser.add_argument('--eval-steps', type=cli_args.positive_int, default=None,
                      help='Trainer evaluation steps (default: the whole eval split).')
  parser.add_argument('--no-materialize', dest='materialize', action='store_false',
                      help='Transform writes no transformed examples; the '
                      'Trainer applies the transform graph to raw records on '
                      'the fly (use at COCO scale).')
  parser.add_argument('--pq-lower-bound', type=float, default=None,
                      help='Bless a model only if its PQ (0..1) is at least '
                      f'this (default {pipeline_config.DEFAULT_PQ_LOWER_BOUND}).')
  parser.add_argument('--pq-regression-tolerance', type=float, default=None,
                      help='... and at most this much (absolute PQ, 0..1) '
                      "below the last blessed model's PQ (default "
                      f'{pipeline_config.DEFAULT_PQ_REGRESSION_TOLERANCE}).')
  parser.add_argument('--warm-start', action='store_true', default=None,
                      help='Initialise the model from the last blessed model '
                      '(TFX base_model) instead of training from the '
                      "experiment's initialisation (default: off).")
  parser.add_argument('--init-checkpoint', default=None, metavar='CKPT',
                      help='Checkpoint prefix or directory (its latest '
                      'checkpoint; local or gs://) a new training run '
                      'initialises the backbone from (default: the '
                      "experiment's, e.g. TF Model Garden's ImageNet "
                      'ResNet-50 for maskformer_coco_panoptic).')
  parser.add_argument('--output-size', type=cli_args.positive_int, default=None,
                      help='Transform output size S (default: the experiment\'s).')
  parser.add_argument('--num-segment-slots', type=cli_args.positive_int, default=None,
                      help='Transform segment slots N (default: the experiment\'s).')
  parser.add_argument('--push-dir', default=None,
                      help='Where the Pusher copies blessed models (default '
                      'PIPELINE_ROOT/pushed_models).')
  parser.set_defaults(handler=_run, data_validation_only=False)


def build_parser() -> argparse.ArgumentParser:
  """The `maskformer-tfx` argument parser."""
  parser = argparse.ArgumentParser(
      prog='maskformer-tfx',
      description='Train, validate and ship MaskFormer panoptic segmentation '
      'models with TFX and TF Model Garden.')
  subparsers = parser.add_subparsers(dest='command', required=True)
  _add_run(subparsers)
  _add_validate(subparsers)
  _add_make_sample(subparsers)
  vertex_runner.add_compile_vertex_parser(subparsers)
  vertex_rehearsal_cli.add_rehearse_vertex_parser(subparsers)
  report.add_report_parser(subparsers)
  predict.add_predict_parser(subparsers)
  import_weights.add_import_weights_parser(subparsers)
  evaluate_coco.add_evaluate_coco_parser(subparsers)
  return parser


def _make_sample(args: argparse.Namespace) -> int:
  from tfx_pipeline import sample_data
  record_dir = sample_data.make_sample_tfrecords(
      args.output, args.num_train, args.num_val, args.image_size, args.seed)
  print(f'COCO panoptic sample: {args.output / "coco"}')
  print(f'TFMG TFRecords:       {record_dir}')
  return 0


def default_sample(sample_dir: pathlib.Path = DEFAULT_SAMPLE_DIR) -> pathlib.Path:
  """The default sample's TFRecord directory, generated on first use."""
  from tfx_pipeline import sample_data
  settings = {'num_train': 64, 'num_val': 16, 'image_size': 128, 'seed': 0}
  marker = sample_dir / SAMPLE_MARKER
  if marker.exists() and json.loads(marker.read_text()) == settings:
    return sample_dir / 'tfrecords'
  print(f'Generating the synthetic COCO panoptic sample in {sample_dir} ...')
  record_dir = sample_data.make_sample_tfrecords(sample_dir, **settings)
  marker.write_text(json.dumps(settings))
  return record_dir


def _one_paragraph(error: BaseException) -> str:
  text = ' '.join(str(error).split())
  return text if len(text) <= 1500 else text[:1500] + ' ...'


def _pipeline_config(args: argparse.Namespace, data_root: str,
                     pipeline_root: str, span: Optional[int] = None
                     ) -> pipeline_config.PipelineConfig:
  overrides = {
      key: getattr(args, key, None) for key in (
          'experiment', 'train_steps', 'eval_steps',
          'output_size', 'num_segment_slots', 'push_dir', 'materialize',
          'pq_lower_bound', 'pq_regression_tolerance', 'warm_start',
          'init_checkpoint')
  }
  if getattr(args, 'config_files', None) or getattr(args, 'params_override', ''):
    from tfx_pipeline import experiment_overrides
    # --config-file(s), then --params-override, as one JSON override checked
    # against the experiment (an error names the file and the key), so that
    # the Trainer reads no local file.
    overrides['params_override'] = experiment_overrides.resolve(
        args.experiment or pipeline_config.DEFAULT_EXPERIMENT,
        args.config_files, args.params_override)
  config = pipeline_config.PipelineConfig(
      pipeline_root=pipeline_root,
      data_root=data_root,
      train_pattern=args.train_pattern,
      eval_pattern=args.eval_pattern,
      span=span,
      enable_cache=args.enable_cache,
      data_validation_only=args.data_validation_only,
      **{key: value for key, value in overrides.items() if value is not None})
  if args.beam_args:
    config.beam_pipeline_args = list(args.beam_args)
  return config


def _run(args: argparse.Namespace) -> int:
  """Runs the pipeline holding its root (one run per pipeline root)."""
  from tfx_pipeline import run_lock

  pipeline_root = os.path.abspath(args.pipeline_root)
  run_id = datetime.datetime.now().isoformat()
  try:
    with run_lock.hold(pipeline_root, run_id, warn=lambda text: print(
        f'Warning: {text}', file=sys.stderr)):
      return _run_holding_root(args, pipeline_root, run_id)
  except run_lock.RootLockedError as error:
    print(f'maskformer-tfx {args.command} stopped: {error}', file=sys.stderr)
    return 1


def _run_holding_root(args: argparse.Namespace, pipeline_root: str,
                      run_id: str) -> int:
  from tfx_pipeline import run_output
  from tfx_pipeline.report import mlmd_run

  log_path = mlmd_run.log_path(pipeline_root, run_id)
  report_line = None
  try:
    data_root = args.data or str(default_sample().resolve())
    print(f'Pipeline root: {pipeline_root}')
    print(f'Run:           {run_id}')
    print(f'Data:          {data_root}')
    # The span is found before anything starts (a pattern matching no span
    # stops here, named) and pinned, so that the input check reads the files
    # ImportExampleGen reads.
    span, patterns = spans.resolve(data_root, args.train_pattern,
                                   args.eval_pattern, args.span)
    if span is not None:
      print(f'Span:          {span} '
            f'({"--span" if args.span is not None else "the latest"})')
    print(f'Log:           {log_path}')
    with run_output.logs_to_file(log_path) as progress:
      # A damaged or unwritable ML Metadata store, like a damaged input
      # file, stops the run here, named, before any component starts.
      from tfx_pipeline import metadata_check
      metadata_check.check_sqlite_store(
          os.path.join(pipeline_root, 'metadata.sqlite'))
      if not args.skip_input_check:
        # The input check's error is logged; one paragraph is printed.
        from tfx_pipeline import input_files
        input_files.check_split_files(data_root, patterns)
      try:
        config = _pipeline_config(args, data_root, pipeline_root, span)
        from runners import local_runner
        from tfx_pipeline import run_summary
        local_runner.run(config, run_id)
        store = local_runner.metadata_store(config)
        summary = (run_summary.describe_span(progress.outputs, store)
                   if span is not None else []) + (
                       run_summary.describe_evaluation(progress.outputs,
                                                       store))
      except Exception:
        logging.exception('The pipeline run failed.')
        raise
      finally:
        report_line = report.report_after_run(pipeline_root, run_id)
  except spans.SpanError as error:
    # Found before any component or log: nothing ran.
    print(f'maskformer-tfx {args.command} stopped: {error}', file=sys.stderr)
    return 1
  except Exception as error:
    print(f'\nThe pipeline run failed: {_one_paragraph(error)}\n'
          f'Full log: {log_path}', file=sys.stderr)
    if report_line:
      print(report_line, file=sys.stderr)
    return 1
  print('\nThe pipeline run succeeded.')
  for line in summary:
    print(line)
  print(report_line)
  print(f'ML Metadata: {local_runner.metadata_path(config)}')
  return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Entry point of the `maskformer-tfx` console script."""
  args = build_parser().parse_args(argv)
  try:
    # Every subcommand uses TensorFlow: import it now, its C++ start-up
    # lines filtered out, before the subcommand prints anything.
    tf_startup.import_tensorflow()
    return args.handler(args)
  except Exception as error:
    print(f'maskformer-tfx {args.command} failed: {_one_paragraph(error)}',
          file=sys.stderr)
    return 1


if __name__ == '__main__':
  sys.exit(main())
