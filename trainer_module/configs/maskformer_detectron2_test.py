"""Tests of the PyTorch-convention experiment."""

from official.core import exp_factory
from trainer_module.configs import maskformer
from trainer_module.configs import maskformer_detectron2
from trainer_module.configs import maskformer_experiments


def test_d2_experiment_is_the_reference_model_with_detectron2_resnet():
  params = exp_factory.get_exp_config(maskformer_detectron2.EXPERIMENT)
  # No default init checkpoint: TFMG's ImageNet ResNet does not fit this
  # backbone; a directory written by import-weights is passed instead.
  assert params.task.init_checkpoint == ''
  params.task.init_checkpoint = '/converted/maskformer_r50'
  maskformer.validate_task_config(params.task)
  reference = maskformer_experiments.maskformer_coco_panoptic()
  assert params.task.model.backbone.type == 'detectron2_resnet'
  resnet = params.task.model.backbone.detectron2_resnet
  assert (resnet.depth, resnet.stem_out_channels, resnet.res2_out_channels,
          resnet.width_per_group, resnet.stride_in_1x1,
          resnet.norm_epsilon) == (50, 64, 256, 64, False, 1e-5)
  assert (params.task.model.replace(backbone=None).as_dict() ==
          reference.task.model.replace(backbone=None).as_dict())
  # The production experiment keeps TFMG's ResNet.
  assert reference.task.model.backbone.type == 'resnet'
