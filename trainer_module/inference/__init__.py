"""Inference with the exported model (`trainer_module.export`) outside the
pipeline: `predict` runs the SavedModel's `serving_default` on images or
TFRecords, `prediction_output` writes the COCO panoptic results,
`overlays` draws segments over an image (one colour per category), and
`serving_rest` answers TF Serving's REST predict API as a deployed model
does."""
