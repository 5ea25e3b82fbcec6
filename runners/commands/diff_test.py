"""`maskformer-tfx diff-test`: the converted original MaskFormer against a
PyTorch reference forward, array by array
(`trainer_module.detectron2_import.import_weights`)."""

import argparse
from typing import Any

from trainer_module.detectron2_import import import_weights


def add_parser(subparsers: Any) -> None:
  """Adds the `diff-test` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'diff-test',
      help='Compare the converted model with a PyTorch reference forward.',
      description=(
          'Converts --pkl, runs it on the image of --forward (a forward.npz '
          'of the original MaskFormer, see goldens/reference_forward) and '
          'prints per array: shape, max |Δ|, max |ref| and max |Δ| / max '
          '|ref|, then the panoptic result on the boosted logits. Exit code '
          '1 if any array exceeds the tolerance or the panoptic results '
          'differ.'))
  parser.add_argument('--pkl', required=True, help='detectron2 checkpoint.')
  parser.add_argument('--config', default=None,
                      help='Its detectron2 config.yaml (default: official R50 '
                      'COCO panoptic).')
  parser.add_argument('--forward', required=True,
                      help='forward.npz of the reference implementation.')
  parser.add_argument('--tolerance', type=float, default=1e-4,
                      help='Allowed max |Δ| / max |ref| (default 1e-4).')
  parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
  """Handler of `diff-test`; returns the process exit code."""
  table, passed = import_weights.diff_test(args.pkl, args.config,
                                           args.forward, args.tolerance)
  print(table)
  print(f'{"PASS" if passed else "FAIL"}: every array within '
        f'max |Δ| <= {args.tolerance:g} * max |ref|'
        + ('' if passed else ' (or panoptic results differ)'))
  return 0 if passed else 1
