"""`maskformer-tfx validate`: only the data half of the pipeline, which fails
naming each anomaly (`run`'s handler with `data_validation_only`)."""

from typing import Any

from runners.commands import run


def add_parser(subparsers: Any) -> None:
  """Adds the `validate` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'validate',
      help='Run only the data half: ExampleGen to ExampleValidator.',
      description=(
          'Runs ImportExampleGen -> StatisticsGen -> ImportSchemaGen -> '
          'ExampleValidator -> DataValidationGate with LocalDagRunner and '
          'fails, naming each anomaly and feature, when the data is bad.'))
  run.add_data_flags(parser)
  parser.set_defaults(handler=run.handle, data_validation_only=True)
