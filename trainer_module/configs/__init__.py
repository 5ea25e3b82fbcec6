"""MaskFormer configs. Importing the package registers nothing: the
experiments are registered by `trainer_module.registry_imports`, their names
are in `experiment_names` (no TensorFlow import)."""
