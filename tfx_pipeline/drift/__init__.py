"""Panoptic data drift: statistics TFDV can compare, and the gate before the
Trainer (docs/data.md, "Drift")."""
