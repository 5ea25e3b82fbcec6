"""COCO panoptic data for the pipeline, outside it: `coco_conversion` turns
COCO panoptic files into TF Model Garden TFRecords (with TFMG's own
converter) and `sample_data` writes a synthetic COCO panoptic sample (the
default data of `maskformer-tfx run`, and the tests').

It imports only `schemas` (and no TensorFlow at import time), so every layer
above may use it."""
