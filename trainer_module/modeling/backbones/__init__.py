"""Backbones registered with TF Model Garden's backbone factory.

Importing this package registers `detectron2_resnet`.
"""

from trainer_module.modeling.backbones import detectron2_resnet
