"""MaskFormer trainer for TF Model Garden.

Importing the package only selects Keras 2 (`schemas.keras_env`); it loads
no TensorFlow and registers nothing. Import `trainer_module.registry_imports`
to register the MaskFormer experiments (`official.core.exp_factory`) and task
(`official.core.task_factory`).

The TFX Trainer's entry point is the function `trainer_module.run_fn.run_fn`
(the pipeline's `run_fn='trainer_module.run_fn.run_fn'`).
"""

from schemas import keras_env

keras_env.ensure_legacy_keras()
