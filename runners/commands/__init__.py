"""The `maskformer-tfx` subcommands, one module each.

Each module is a thin layer over a library function: `add_parser(subparsers)`
registers the subcommand (its arguments and help) and `handle(args)` calls the
library and prints the outcome, returning the exit status. `runners.cli`
dispatches to them. Building a parser loads no TensorFlow or TFX (the
libraries load them inside their functions), so `--help` is instant.
"""
