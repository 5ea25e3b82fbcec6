"""`maskformer-tfx run`: the pipeline on this machine (LocalDagRunner, SQLite
ML Metadata), its progress on the terminal and its logs in a file; the data
flags and the handler that `validate` shares."""

import argparse
import datetime
import logging
import os
import pathlib
import sys
from typing import Any, Optional

from runners.commands import arg_types
from runners.commands import errors
from runners.commands import make_sample
from tfx_pipeline import config as pipeline_config
from tfx_pipeline import report
from tfx_pipeline import spans

DEFAULT_PIPELINE_ROOT = pathlib.Path('outputs') / 'pipeline'


def add_data_flags(parser: argparse.ArgumentParser) -> None:
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


def add_parser(subparsers: Any) -> None:
  """Adds the `run` subcommand to the CLI's subparsers."""
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
  add_data_flags(parser)
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
  parser.add_argument('--train-steps', type=arg_types.positive_int, default=None,
                      help='Trainer steps (default: the experiment\'s).')
  parser.add_argument('--eval-steps', type=arg_types.positive_int, default=None,
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
  parser.add_argument('--output-size', type=arg_types.positive_int, default=None,
                      help='Transform output size S (default: the experiment\'s).')
  parser.add_argument('--num-segment-slots', type=arg_types.positive_int, default=None,
                      help='Transform segment slots N (default: the experiment\'s).')
  parser.add_argument('--push-dir', default=None,
                      help='Where the Pusher copies blessed models (default '
                      'PIPELINE_ROOT/pushed_models).')
  parser.add_argument('--allow-drift', action='store_true', default=None,
                      help='Train even when the data drifted against the data '
                      'of the last blessed model (the summary and the report '
                      'flag it).')
  parser.add_argument('--drift-schema', dest='drift_schema_file', default=None,
                      metavar='FILE', help='TFDV schema with the drift limits '
                      '(default: schemas/panoptic_drift_schema.pbtxt).')
  parser.set_defaults(handler=handle, data_validation_only=False)


def pipeline_config_of(args: argparse.Namespace, data_root: str,
                       pipeline_root: str, span: Optional[int] = None
                      ) -> pipeline_config.PipelineConfig:
  """The `PipelineConfig` of `run`'s or `validate`'s arguments."""
  overrides = {
      key: getattr(args, key, None) for key in (
          'experiment', 'train_steps', 'eval_steps',
          'output_size', 'num_segment_slots', 'push_dir', 'materialize',
          'pq_lower_bound', 'pq_regression_tolerance', 'warm_start',
          'init_checkpoint', 'allow_drift', 'drift_schema_file')
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


def handle(args: argparse.Namespace) -> int:
  """Handler of `run` and `validate`: runs the pipeline holding its root
  (one run per pipeline root); returns the process exit code."""
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
  from runners import run_output
  from tfx_pipeline.report import mlmd_run

  log_path = mlmd_run.log_path(pipeline_root, run_id)
  report_line = None
  try:
    data_root = args.data or str(make_sample.default_sample().resolve())
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
      from runners import metadata_check
      metadata_check.check_sqlite_store(
          os.path.join(pipeline_root, 'metadata.sqlite'))
      if not args.skip_input_check:
        # The input check's error is logged; one paragraph is printed.
        from runners import input_files
        input_files.check_split_files(data_root, patterns)
      try:
        config = pipeline_config_of(args, data_root, pipeline_root, span)
        from runners import local_runner
        from tfx_pipeline import run_summary
        local_runner.run(config, run_id)
        store = local_runner.metadata_store(config)
        from tfx_pipeline.drift import summary as drift_summary
        summary = (run_summary.describe_span(progress.outputs, store)
                   if span is not None else []) + (
                       drift_summary.describe_drift(progress.outputs)) + (
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
    print(f'\nThe pipeline run failed: {errors.one_paragraph(error)}\n'
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
