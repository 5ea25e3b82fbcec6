"""Inference with the exported model (`trainer_module.export`) outside the
pipeline: `predict` runs the SavedModel's `serving_default` on images or
TFRecords, `prediction_output` writes the COCO panoptic results, and
`overlays` draws segments over an image (one colour per category)."""
