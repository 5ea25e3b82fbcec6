"""The pipeline's wiring as TFX reads it."""

import importlib

from tfx_pipeline import config as pipeline_config
from tfx_pipeline import pipeline as pipeline_lib
from trainer_module.run_fn import run_fn


def test_the_trainers_run_fn_is_the_function_tfx_imports():
  # TFX splits the Trainer's run_fn at its last dot, imports (reloads) the
  # module and reads the attribute (tfx.components.util.udf_utils.get_fn).
  (trainer,) = [component for component in pipeline_lib.create_components(
      pipeline_config.PipelineConfig(pipeline_root='/tmp/unused',
                                     data_root='/tmp/unused'))
                if component.id == 'Trainer']
  module, name = trainer.exec_properties['run_fn'].rsplit('.', 1)
  assert getattr(importlib.import_module(module), name) is run_fn
