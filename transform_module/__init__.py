"""tf.Transform preprocessing of TFMG COCO panoptic records for MaskFormer."""

from schemas import keras_env

keras_env.ensure_legacy_keras()

from transform_module.preprocessing import preprocessing_fn

__all__ = ['preprocessing_fn']
