"""tf.Transform preprocessing of TFMG COCO panoptic records for MaskFormer."""

from transform_module.preprocessing import preprocessing_fn

__all__ = ['preprocessing_fn']
