"""@configurable with an OmegaConf DictConfig as well as a yacs CfgNode (upstream's behaviour)."""

import pytest
import torch
from omegaconf import OmegaConf

from detectron2_export.config import configurable, get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.roi_heads.box_head import FastRCNNConvFCHead


class _Module:
    @configurable
    def __init__(self, a, b=2, *, c=3):
        self.values = (a, b, c)

    @classmethod
    def from_config(cls, cfg, b=20):
        return {"a": cfg.A, "b": b, "c": cfg.C}


@configurable(from_config=lambda cfg, scale=1: {"x": cfg.X * scale})
def _build(x, y=0):
    return x + y


@pytest.mark.parametrize("make_cfg", [OmegaConf.create, lambda d: get_cfg().__class__(d)], ids=["DictConfig", "CfgNode"])
def test_class_and_function_take_either_config(make_cfg):
    cfg = make_cfg({"A": 1, "C": 7, "X": 5})
    assert _Module(cfg).values == (1, 20, 7)
    assert _Module(cfg=cfg, b=4).values == (1, 4, 7)
    assert _Module(9).values == (9, 2, 3)  # explicit arguments bypass from_config
    assert _build(cfg) == 5
    assert _build(cfg, scale=3, y=1) == 16  # from_config's argument, then the function's own
    assert _build(2, y=1) == 3


def test_a_model_part_built_from_an_omegaconf_config_equals_the_yacs_one():
    cfg = get_cfg()
    cfg.MODEL.ROI_BOX_HEAD.NUM_FC = 2
    cfg.MODEL.ROI_BOX_HEAD.NUM_CONV = 1
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 32
    shape = ShapeSpec(channels=8, height=7, width=7)
    torch.manual_seed(0)
    from_yacs = FastRCNNConvFCHead(cfg, shape)
    torch.manual_seed(0)
    from_omegaconf = FastRCNNConvFCHead(OmegaConf.create(cfg.dump()), shape)  # via YAML text
    assert from_omegaconf.output_shape == from_yacs.output_shape == ShapeSpec(channels=32)
    yacs_state = from_yacs.state_dict()
    assert list(from_omegaconf.state_dict()) == list(yacs_state) == [
        "conv1.weight", "conv1.bias", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
    for key, value in from_omegaconf.state_dict().items():
        torch.testing.assert_close(value, yacs_state[key], rtol=0, atol=0)
