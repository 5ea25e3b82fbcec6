"""`maskformer-tfx rehearse-vertex`: run a compiled Vertex pipeline locally
(`runners.vertex_rehearsal`)."""

import argparse
import os
import sys

from runners.vertex_rehearsal import fake_registry
from runners.vertex_rehearsal import online_request
from runners.vertex_rehearsal import spec as spec_lib
from runners.vertex_rehearsal import task_runner


def add_parser(subparsers) -> argparse.ArgumentParser:
  """Adds the `rehearse-vertex` subcommand to an argparse subparsers object."""
  parser = subparsers.add_parser(
      'rehearse-vertex',
      help='Execute a compiled Vertex AI pipeline here, task by task.',
      description=(
          'Reads the PipelineJob JSON that compile-vertex wrote and runs each '
          'task in dependency order as Vertex AI Pipelines does: its '
          'container command and args as compiled, with {{$}} and the other '
          'placeholders resolved into the executor input JSON (input '
          'artifacts from upstream outputs, parameters, output artifact URIs, '
          'the output metadata file). gs://BUCKET/PATH is mapped to '
          'GCS_ROOT/BUCKET/PATH, this project\'s .venv stands in for the '
          'image, Dataflow for Beam\'s DirectRunner, the Trainer\'s Vertex AI '
          'Training custom job for a fake client that captures the job and '
          'runs its container command here with the CPU strategy, and the '
          'resolver tasks query a local record of earlier rehearsals under '
          'GCS_ROOT (first run: no baseline). Every substitution is printed. '
          'Stops at the first failing task, as Vertex does. Task logs: '
          'GCS_ROOT/_rehearsal/JOB_ID/.'))
  parser.add_argument('--compiled', required=True, metavar='FILE.json',
                      help='The compiled PipelineJob JSON (compile-vertex '
                      '--output).')
  parser.add_argument('--gcs-root', required=True, metavar='DIR',
                      help='Local directory standing in for Cloud Storage: '
                      'gs://BUCKET/PATH is DIR/BUCKET/PATH (put the data '
                      'there).')
  parser.set_defaults(handler=handle)
  return parser


def handle(args: argparse.Namespace) -> int:
  """Handler of `rehearse-vertex`; returns the process exit code."""
  try:
    pipeline = spec_lib.load(args.compiled)
    result = task_runner.Rehearsal(pipeline, args.gcs_root).run()
  except spec_lib.RehearsalError as error:
    print(f'rehearse-vertex: {error}', file=sys.stderr)
    return 2
  print('\nRehearsal of the Vertex AI pipeline '
        f'{"succeeded" if result.succeeded else "failed"}: {result.job_id}')
  for line in task_runner.summary(result):
    print(f'  {line}')
  if result.succeeded:
    for line in online_request.answer(
        os.path.join(args.gcs_root, fake_registry.REQUESTS_DIR),
        result.job_root):
      print(f'  {line}')
  print(f'  artifacts: {result.job_root}')
  print(f'  task logs: {result.log_dir}')
  return 0 if result.succeeded else 1
