"""Panoptic quality: the exact COCO PQ arithmetic (`panoptic_quality`), the
COCO-rule evaluator (`coco_panoptic_quality`) and COCO's own PQ of an exported
model on a COCO panoptic ground truth (`evaluate_coco`)."""
