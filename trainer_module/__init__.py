"""MaskFormer trainer for TF Model Garden.

Importing the package registers the `maskformer_coco_panoptic` and
`maskformer_tiny` experiments (`official.core.exp_factory`) and the
MaskFormer task (`official.core.task_factory`).
"""

from schemas import keras_env

keras_env.ensure_legacy_keras()

# pylint: disable=g-import-not-at-top,wrong-import-position,unused-import
from trainer_module.configs import maskformer_experiments as _experiments
from trainer_module.tasks import maskformer as _maskformer_task
from trainer_module.run_fn import run_fn
