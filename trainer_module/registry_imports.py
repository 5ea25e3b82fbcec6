"""Registers the MaskFormer experiments and task with TF Model Garden.

As `official.vision.registry_imports`: import this module (for its side
effect) wherever a registry is looked up by name, i.e. before
`exp_factory.get_exp_config('maskformer_...')` or
`task_factory.get_task(MaskFormerTask config)`. Importing `trainer_module`
alone registers nothing and loads no TensorFlow.

Registered: the experiments named in `trainer_module.configs.experiment_names`
(`maskformer_experiments`, `maskformer_detectron2`) and the MaskFormer task
(`trainer_module.tasks.maskformer`).
"""

from trainer_module.configs import maskformer_detectron2  # noqa: F401
from trainer_module.configs import maskformer_experiments  # noqa: F401
from trainer_module.tasks import maskformer  # noqa: F401
