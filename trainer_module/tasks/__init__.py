"""TF Model Garden tasks of the MaskFormer trainer."""
