"""The original MaskFormer's weights here: `import-weights` and `diff-test`
(`runners.commands.import_weights`, `runners.commands.diff_test`).

`maskformer-tfx import-weights --pkl FILE [--config CONFIG.yaml]
--image-size S --output DIR` converts a detectron2 MaskFormer checkpoint
(state_dict or official model-zoo key spelling) into DIR: a TF checkpoint
(`ckpt-1`, usable as `--init-checkpoint DIR`), `params.yaml` (experiment
`maskformer_coco_panoptic_d2` with the checkpoint's architecture) and
`saved_model/` with the pipeline's serving signatures and `raw_outputs`.
With `--backbone-only`, FILE is detectron2's ImageNet ResNet (`R-50.pkl`,
torchvision converted) and DIR gets a backbone-only checkpoint.

`maskformer-tfx diff-test --pkl FILE --config CONFIG.yaml --forward
forward.npz` prints the element-wise comparison of every intermediate with
the PyTorch reference's and exits 1 if any exceeds the tolerance.
"""

import os
import pathlib
import shutil
import tempfile
import time
from typing import Optional


def make_transform_graph(image_size: int, num_segment_slots: int,
                         output_dir: str) -> str:
  """Writes a tf.Transform graph for S × S serving into `output_dir`.

  The transform has no analyzers, so its graph does not depend on the data:
  it is made from a one-image synthetic sample, as the pipeline's Transform
  component would make it.
  """
  import tensorflow_transform as tft
  from tensorflow_transform.tf_metadata import dataset_metadata
  from tensorflow_transform.tf_metadata import metadata_io
  from tensorflow_transform.tf_metadata import schema_utils
  from panoptic_data import coco_conversion
  from panoptic_data import sample_data
  from transform_module import beam_runner
  from transform_module import preprocessing
  with tempfile.TemporaryDirectory() as sample_dir:
    # One image, converted by TFMG's converter (val split only).
    files = sample_data.make_sample(pathlib.Path(sample_dir), 1, 1,
                                    image_size, 0)['val']
    records = pathlib.Path(sample_dir) / 'val'
    coco_conversion.convert_coco_panoptic(
        files.image_dir, files.annotations_file, files.panoptic_dir, records)
    beam_runner.run_transform(
        str(records) + '*', output_dir,
        {'output_size': image_size,
         'num_segment_slots': num_segment_slots})
  for path in beam_runner.transformed_example_files(output_dir):
    os.remove(path)
  shutil.rmtree(os.path.join(output_dir, 'tmp'), ignore_errors=True)
  metadata_io.write_metadata(
      dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(
          preprocessing.raw_feature_spec())),
      os.path.join(output_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
  return output_dir


def import_weights(pkl: str, config: Optional[str], image_size: int,
                   output: str, transform_graph: Optional[str] = None,
                   backbone_only: bool = False) -> str:
  """Converts `pkl` into `output`; returns a summary to print."""
  from official.core import train_utils
  from trainer_module.detectron2_import import converter
  from trainer_module.detectron2_import import detectron2_config
  from trainer_module.detectron2_import import writer
  start = time.time()
  if backbone_only:
    backbone, ignored = converter.convert_backbone(pkl, config, image_size)
    prefix = writer.write_checkpoint({'backbone': backbone}, output)
    settings = detectron2_config.settings_from_config(
        detectron2_config.load_config(config), image_size)
    train_utils.serialize_config(
        writer.experiment_config(settings, output, 'backbone'), output)
    note = (f'; ignored {len(ignored)} non-backbone tensor(s): '
            f'{", ".join(sorted(ignored))}' if ignored else '')
    return (f'Backbone checkpoint {prefix} ({len(backbone.variables)} '
            f'variables{note}) and {output}/params.yaml '
            f'(init_checkpoint_modules: backbone) in {time.time() - start:.0f} s.')
  converted = converter.convert_maskformer(pkl, config, image_size)
  if transform_graph is None:
    params = writer.experiment_config(converted.settings, output)
    transform_graph = make_transform_graph(
        image_size, params.task.train_data.num_segment_slots,
        os.path.join(output, 'transform_graph'))
  prefix = writer.write_all(converted, output, transform_graph)
  return (f'Converted {converted.num_variables} variables in '
          f'{time.time() - start:.0f} s:\n'
          f'  TF checkpoint  {prefix} (--init-checkpoint {output})\n'
          f'  experiment     {output}/params.yaml\n'
          f'  SavedModel     {output}/{writer.SAVED_MODEL_DIR} (serving_default, '
          'serving_examples, transform_labels, raw_outputs)')


def diff_test(pkl: str, config: Optional[str], forward: str,
              tolerance: float) -> tuple:
  """(table text, all passed) of the comparison with `forward`."""
  import numpy as np
  from trainer_module.detectron2_import import converter
  from trainer_module.detectron2_import import differential
  try:
    reference = np.load(forward)
  except (OSError, ValueError) as error:
    raise ValueError(f'{forward}: not a readable .npz file ({error}).') from error
  missing = [key for key in ('image_rgb', 'pred_logits', 'pred_masks',
                             'panoptic_seg_boosted',
                             'segments_info_boosted_json')
             if key not in reference.files]
  if missing:
    raise ValueError(f'{forward}: lacks the arrays {missing} of a reference '
                     'forward (see goldens/reference_forward/README.md).')
  image_size = reference['image_rgb'].shape[0]
  converted = converter.convert_maskformer(pkl, config, image_size)
  rows, panoptic = differential.compare(
      converted.model, reference,
      converted.settings.object_mask_threshold,
      converted.settings.overlap_threshold,
      pixel_mean=converted.settings.pixel_mean,
      pixel_std=converted.settings.pixel_std)
  passed = all(row.passes(tolerance) for row in rows) and panoptic['identical']
  return differential.format_table(rows, panoptic, tolerance), passed
