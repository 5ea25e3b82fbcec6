"""Panoptic quality: the exact COCO PQ arithmetic and the COCO-rule evaluator."""
