"""Initialising MaskFormer from a pretrained checkpoint (`init_checkpoint`).

'backbone' restores `model.backbone` from the checkpoint's `backbone` object:
TF Model Garden's image-classification trainer writes its ResNet that way
(`official.core.base_trainer.Trainer` saves `tf.train.Checkpoint(
global_step=..., model=..., optimizer=..., **model.checkpoint_items)` and
`ClassificationModel.checkpoint_items` is `{'backbone': ...}`), and TFMG's
Mask R-CNN / RetinaNet tasks read the published ImageNet ResNet-50 with
`tf.train.Checkpoint(backbone=model.backbone)`. 'all' restores every item of
`model.checkpoint_items`. Nothing is downloaded: local or gs:// paths only.
"""

from absl import logging
import tensorflow as tf
import tf_keras


def resolve_init_checkpoint(init_checkpoint: str) -> str:
  """The checkpoint prefix of `init_checkpoint` (a prefix or a directory).

  A directory (e.g. a TFMG model_dir or a converted-weights directory) gives
  its latest checkpoint. Reads only the checkpoint's index, so `run_fn` can
  call it to fail before the Trainer builds anything.

  Raises:
    ValueError: no readable checkpoint there; the message names the path
      and what is missing.
  """
  if tf.io.gfile.isdir(init_checkpoint):
    path = tf.train.latest_checkpoint(init_checkpoint)
    if not path:
      raise ValueError(
          f'init_checkpoint {init_checkpoint} is a directory without a '
          'checkpoint (no `checkpoint` file naming one).')
  else:
    path = init_checkpoint
  if not tf.io.gfile.exists(path + '.index'):
    raise ValueError(f'init_checkpoint {path} does not exist (no '
                     f'{path}.index); give a checkpoint prefix such as '
                     'DIR/ckpt-1000 or a directory holding checkpoints.')
  try:
    names = [name for name, _ in tf.train.list_variables(path)]
  except (ValueError, tf.errors.OpError) as error:
    raise ValueError(f'init_checkpoint {path} is not a readable TensorFlow '
                     f'checkpoint: {error}') from error
  if not names:
    raise ValueError(f'init_checkpoint {path} holds no variables.')
  return path


def restore_init_checkpoint(model: tf_keras.Model, init_checkpoint: str,
                            modules: str) -> str:
  """Restores `modules` ('backbone' or 'all') of `model`; returns the prefix.

  Raises:
    ValueError: the checkpoint is missing, unreadable or does not fit the
      model (a variable of the restored modules has no value in it, or a
      value of another shape); the message names the checkpoint.
  """
  path = resolve_init_checkpoint(init_checkpoint)
  if modules == 'all':
    items = dict(model.checkpoint_items)
  else:
    items = {'backbone': model.backbone}
  try:
    status = tf.train.Checkpoint(**items).read(path)
    status.expect_partial().assert_existing_objects_matched()
  except (AssertionError, ValueError, tf.errors.OpError) as error:
    raise ValueError(
        f'init_checkpoint {path} does not fit the model '
        f'(init_checkpoint_modules={modules!r}: restoring {sorted(items)}): '
        f'{" ".join(str(error).split())[:1000]}') from error
  logging.info('Restored %s from %s.', modules, path)
  return path
