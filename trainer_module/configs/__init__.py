"""MaskFormer configs; importing the package registers the PyTorch-convention
experiments of `maskformer_detectron2` (the others register on importing
`trainer_module.configs.maskformer`)."""

# pylint: disable=unused-import
from trainer_module.configs import maskformer_detectron2
