"""COCO panoptic → TFRecords in TF Model Garden's format, by TFMG's own converter.

Runs `official.vision.data.create_coco_tf_record --include_panoptic_masks`
(installed with tf-models-official) in a child process: the converter reads its
settings from absl flags, so a process of its own is the supported way to call
it. The records it writes are exactly what users get from the converter.
"""

import os
import pathlib
import subprocess
import sys
from typing import Sequence, Union

PathLike = Union[str, os.PathLike]

CONVERTER_MODULE = 'official.vision.data.create_coco_tf_record'


class ConversionError(RuntimeError):
  """TFMG's converter failed; the message carries the end of its output."""


def convert_coco_panoptic(image_dir: PathLike, annotations_file: PathLike,
                          panoptic_masks_dir: PathLike,
                          output_prefix: PathLike, num_shards: int = 1,
                          skip_crowd: bool = False) -> Sequence[pathlib.Path]:
  """Converts one COCO panoptic split with TFMG's converter.

  Args:
    image_dir: directory of the split's images.
    annotations_file: the split's COCO panoptic JSON (also used as image info).
    panoptic_masks_dir: directory of the split's panoptic PNGs.
    output_prefix: e.g. `out/train` → `out/train-00000-of-00001.tfrecord`.
    num_shards: number of output shards.
    skip_crowd: pass `--panoptic_skip_crowd` (crowd regions become void).

  Returns:
    The written TFRecord files.
  """
  output_prefix = pathlib.Path(output_prefix)
  output_prefix.parent.mkdir(parents=True, exist_ok=True)
  command = [
      sys.executable, '-m', CONVERTER_MODULE,
      f'--image_dir={image_dir}',
      f'--image_info_file={annotations_file}',
      f'--panoptic_annotations_file={annotations_file}',
      f'--panoptic_masks_dir={panoptic_masks_dir}',
      '--include_panoptic_masks=True',
      f'--panoptic_skip_crowd={skip_crowd}',
      f'--output_file_prefix={output_prefix}',
      f'--num_shards={num_shards}',
      '--num_processes=0',
  ]
  env = dict(os.environ, TF_USE_LEGACY_KERAS='1', TF_CPP_MIN_LOG_LEVEL='2')
  result = subprocess.run(command, capture_output=True, text=True, env=env,
                          check=False)
  if result.returncode != 0:
    tail = '\n'.join(result.stderr.strip().splitlines()[-15:])
    raise ConversionError(
        f'TFMG converter failed on {annotations_file} (exit '
        f'{result.returncode}):\n{tail}')
  files = sorted(output_prefix.parent.glob(f'{output_prefix.name}-*.tfrecord'))
  if len(files) != num_shards:
    raise ConversionError(
        f'TFMG converter wrote {len(files)} shards for {output_prefix}, '
        f'expected {num_shards}.')
  return files
