"""Tests for the MaskFormer model factory and config validation."""

import pytest

from official.vision.configs import backbones
from trainer_module.configs import maskformer_model as maskformer_cfg
from trainer_module.modeling import factory


def test_default_config_is_the_reference():
  config = maskformer_cfg.MaskFormerModel()
  maskformer_cfg.validate_model_config(config)
  assert (config.num_classes, config.num_queries, config.hidden_size) == (
      133, 100, 256)
  assert config.backbone.type == 'resnet'
  assert config.backbone.resnet.model_id == 50
  assert not config.backbone.resnet.bn_trainable
  assert config.pixel_decoder.num_encoder_layers == 6
  assert config.transformer_decoder.num_layers == 6


def test_config_overrides_and_nests():
  config = maskformer_cfg.MaskFormerModel()
  config.override({'transformer_decoder': {'num_layers': 3},
                   'backbone': {'resnet': {'model_id': 101}}})
  assert config.transformer_decoder.num_layers == 3
  assert config.backbone.resnet.model_id == 101
  restored = maskformer_cfg.MaskFormerModel(config.as_dict())
  assert restored.as_dict() == config.as_dict()


@pytest.mark.parametrize('overrides,field', [
    ({'hidden_size': 36, 'pixel_decoder': {'num_heads': 4,
                                           'fpn_norm_groups': 4}},
     'transformer_decoder.num_heads'),
    ({'hidden_size': 30}, 'hidden_size'),
    ({'pixel_decoder': {'num_heads': 5}}, 'pixel_decoder.num_heads'),
    ({'pixel_decoder': {'fpn_norm_groups': 3}}, 'pixel_decoder.fpn_norm_groups'),
    ({'transformer_decoder': {'num_layers': 0}}, 'transformer_decoder.num_layers'),
    ({'transformer_decoder': {'dropout': 1.0}}, 'transformer_decoder.dropout'),
    ({'num_queries': 0}, 'num_queries'),
    ({'input_size': [100, 640, 3]}, 'input_size'),
    ({'input_size': [640, 640]}, 'input_size'),
])
def test_invalid_config_names_field(overrides, field):
  config = maskformer_cfg.MaskFormerModel()
  config.override(overrides)
  with pytest.raises(ValueError, match=f'{field}='):
    factory.build_maskformer_model(config)


def test_unknown_backbone_type_fails():
  config = maskformer_cfg.MaskFormerModel(
      backbone=backbones.Backbone(type='mobilenet'))
  with pytest.raises(ValueError, match='backbone.type=.mobilenet.'):
    factory.build_maskformer_model(config)
