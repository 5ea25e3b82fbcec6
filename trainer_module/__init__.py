"""MaskFormer trainer for TF Model Garden.

Importing the package only selects Keras 2 (`schemas.keras_env`); it loads
no TensorFlow and registers nothing. Import `trainer_module.registry_imports`
to register the MaskFormer experiments (`official.core.exp_factory`) and task
(`official.core.task_factory`).

`trainer_module.run_fn` is the TFX Trainer's entry point (the pipeline's
`run_fn='trainer_module.run_fn'`): TFX imports this package and reads the
attribute, which `__getattr__` resolves to the function
`trainer_module.run_fn.run_fn` on first use (PEP 562).
"""

from schemas import keras_env

keras_env.ensure_legacy_keras()

# Importing the submodule `trainer_module.run_fn` binds it as this package's
# `run_fn` attribute, which would hide the function from `__getattr__`. TFX
# reloads this package before reading the attribute
# (`tfx.utils.import_utils.import_func_from_module`), so drop any such
# binding here: the next access gets the function.
globals().pop('run_fn', None)


def __getattr__(name: str):
  if name == 'run_fn':
    from trainer_module.run_fn import run_fn  # pylint: disable=g-import-not-at-top,redefined-outer-name
    globals()['run_fn'] = run_fn
    return run_fn
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
