"""MaskFormer configs; importing the package registers the experiments
(`maskformer_experiments`, and the PyTorch-convention ones of
`maskformer_detectron2`)."""

# pylint: disable=unused-import
from trainer_module.configs import maskformer_detectron2
from trainer_module.configs import maskformer_experiments
