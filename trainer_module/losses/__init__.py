"""Losses of the MaskFormer trainer."""

from trainer_module.losses.maskformer_losses import maskformer_losses
from trainer_module.losses.maskformer_matcher import maskformer_matching_cost
from trainer_module.losses.maskformer_matcher import match_queries_to_targets
