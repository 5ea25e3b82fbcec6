"""`maskformer-tfx import-weights`: the original MaskFormer's detectron2
weights as a TF checkpoint, experiment and SavedModel
(`trainer_module.detectron2_import.import_weights`)."""

import argparse
from typing import Any

from trainer_module.detectron2_import import import_weights


def _image_size(text: str) -> int:
  value = int(text)
  if value < 32 or value % 32:
    raise argparse.ArgumentTypeError(
        f'must be a positive multiple of 32 (the backbone stride), got {value}')
  return value


def add_parser(subparsers: Any) -> None:
  """Adds the `import-weights` subcommand to the CLI's subparsers."""
  parser = subparsers.add_parser(
      'import-weights',
      help="Convert the original MaskFormer's detectron2 weights.",
      description=(
          'Reads a detectron2 MaskFormer checkpoint (.pkl; state_dict or '
          'official model-zoo key names) and its detectron2 config.yaml, '
          'builds the matching model (backbone.type detectron2_resnet) and '
          'converts every tensor, refusing any checkpoint tensor left unused '
          'or model variable left unset. Writes OUTPUT/ckpt-1 (use '
          '--init-checkpoint OUTPUT), OUTPUT/params.yaml and '
          'OUTPUT/saved_model (serving_default, serving_examples, '
          'transform_labels, raw_outputs).'))
  parser.add_argument('--pkl', required=True,
                      help='detectron2 checkpoint (.pkl of numpy arrays).')
  parser.add_argument('--config', default=None,
                      help='detectron2 config.yaml of the checkpoint (default: '
                      'the official R50 COCO panoptic settings).')
  parser.add_argument('--image-size', required=True, type=_image_size,
                      help='Square input size S of the model (multiple of 32).')
  parser.add_argument('--output', required=True,
                      help='Output directory (created).')
  parser.add_argument('--transform-graph', default=None,
                      help="The pipeline's tf.Transform output at S (default: "
                      'made from a one-image sample into OUTPUT/transform_graph).')
  parser.add_argument('--backbone-only', action='store_true',
                      help="--pkl is detectron2's ImageNet ResNet (R-50.pkl): "
                      'write a backbone-only checkpoint (init_checkpoint_modules '
                      'backbone).')
  parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
  """Handler of `import-weights`; returns the process exit code."""
  print(import_weights.import_weights(
      args.pkl, args.config, args.image_size, args.output,
      args.transform_graph, args.backbone_only))
  return 0
