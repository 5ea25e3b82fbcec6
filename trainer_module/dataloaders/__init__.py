"""Input pipelines of the MaskFormer trainer."""
