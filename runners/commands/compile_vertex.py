"""`maskformer-tfx compile-vertex`: compile the pipeline for Vertex AI
Pipelines and optionally submit it (`runners.vertex.compiler`)."""

import argparse
import dataclasses
import sys
import typing
from typing import Any, Dict

from runners.vertex import compiler
from runners.vertex import settings as vertex_settings
from runners.vertex import validation
from runners.vertex.settings import VertexSettings
from runners.vertex.settings import VertexSettingsError


def _flag_type(field: dataclasses.Field) -> Dict[str, Any]:
  """argparse keyword arguments for a settings field."""
  hint = typing.get_type_hints(VertexSettings)[field.name]
  if typing.get_origin(hint) is typing.Union:
    hint = typing.get_args(hint)[0]
  if hint is bool:
    return {'action': argparse.BooleanOptionalAction}
  if typing.get_origin(hint) is list:
    return {'action': 'append', 'metavar': 'ARG'}
  return {'type': hint, 'metavar': field.name.upper()}


def _help_text(field: dataclasses.Field) -> str:
  """The field's help, with its default where that is a value."""
  text = field.metadata['help']
  if field.default in (None, '', dataclasses.MISSING):
    return text
  return f'{text.rstrip(".")} (default: {field.default}).'


def add_parser(subparsers) -> argparse.ArgumentParser:
  """Adds the `compile-vertex` subcommand to an argparse subparsers object."""
  parser = subparsers.add_parser(
      'compile-vertex',
      help='Compile the pipeline for Vertex AI Pipelines (and submit it).',
      description=(
          'Compiles the pipeline for Vertex AI Pipelines into a PipelineJob '
          'JSON file: Beam components (ExampleGen, StatisticsGen, Transform, '
          'Evaluator) on Dataflow, the Trainer on Vertex AI Training (TPU v5e '
          'by default, or GPUs), every step in the --image container. '
          'Settings come from --config (a YAML file whose keys are the '
          'setting names below with underscores, e.g. trainer_machine_type) '
          'and the flags, which win. Invalid settings stop it before '
          'anything is compiled or submitted. With --submit it creates the '
          'PipelineJob through google-cloud-aiplatform and prints its '
          'console link.'))
  parser.add_argument('--output', required=True,
                      help='Where to write the PipelineJob JSON (required).')
  parser.add_argument('--config', default=None, metavar='FILE.yaml',
                      help='YAML file of settings (flags override it).')
  parser.add_argument('--submit', action='store_true',
                      help='Submit the compiled pipeline to Vertex AI '
                      'Pipelines and print the run\'s console link.')
  parser.add_argument('--skip-memory-check', action='store_true',
                      help='Compile even when the train step\'s estimated '
                      'memory per TPU chip (with 15%% headroom) exceeds the '
                      'chip\'s (docs/training_on_tpu.md); prints a warning.')
  for field in vertex_settings.setting_fields():
    parser.add_argument(
        *vertex_settings.flag_names(field), dest=field.name, default=None,
        help=_help_text(field),
        **_flag_type(field))
  parser.set_defaults(handler=handle)
  return parser


def handle(args: argparse.Namespace) -> int:
  """Handler of `compile-vertex`; returns the process exit code."""
  overrides = {field.name: getattr(args, field.name, None)
               for field in vertex_settings.setting_fields()}
  try:
    settings = validation.load_settings(args.config, overrides)
    output_file = compiler.compile_pipeline(
        settings, args.output,
        skip_memory_check=getattr(args, 'skip_memory_check', False))
  except VertexSettingsError as error:
    print(f'compile-vertex: {error}', file=sys.stderr)
    return 2
  except compiler.LocalPathError as error:
    print(f'compile-vertex: {error}', file=sys.stderr)
    return 1
  print(f'Compiled the Vertex AI pipeline: {output_file}')
  if not args.submit:
    return 0
  job = compiler.submit_pipeline(settings, output_file)
  print(f'Submitted pipeline run {job.name}: '
        f'{compiler.console_url(settings, job.name)}')
  return 0
