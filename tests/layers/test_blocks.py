"""CNNBlockBase.freeze, DepthwiseSeparableConv2d and ShapeSpec."""

import dataclasses

import torch
from torch import nn

from detectron2_export.layers import (
    CNNBlockBase,
    Conv2d,
    DepthwiseSeparableConv2d,
    FrozenBatchNorm2d,
    ShapeSpec,
)


class _Block(CNNBlockBase):
    def __init__(self):
        super().__init__(3, 4, stride=2)
        self.conv = Conv2d(3, 4, 3, stride=2, padding=1, bias=False, norm=nn.BatchNorm2d(4))

    def forward(self, x):
        return self.conv(x)


def test_freeze_converts_bn_and_stops_grad():
    block = _Block()
    block.conv.norm.running_mean.data = torch.tensor([1.0, 2, 3, 4])
    x = torch.randn(1, 3, 8, 8)
    before = block.eval()(x)
    assert block.freeze() is block
    assert isinstance(block.conv.norm, FrozenBatchNorm2d)
    assert all(not p.requires_grad for p in block.parameters())
    torch.testing.assert_close(block(x), before)
    assert (block.in_channels, block.out_channels, block.stride) == (3, 4, 2)
    assert block(x).shape == (1, 4, 4, 4)


def test_depthwise_separable():
    m = DepthwiseSeparableConv2d(4, 6, norm1="BN", activation1=nn.ReLU(), norm2="", activation2=None)
    assert m.depthwise.groups == 4 and m.depthwise.bias is None and m.pointwise.bias is not None
    assert "depthwise.norm.running_mean" in m.state_dict()
    assert m(torch.randn(1, 4, 5, 5)).shape == (1, 6, 5, 5)


def test_shape_spec():
    s = ShapeSpec(channels=256, stride=4)
    assert (s.channels, s.height, s.width, s.stride) == (256, None, None, 4)
    assert ShapeSpec() == ShapeSpec(None, None, None, None)
    assert [f.name for f in dataclasses.fields(ShapeSpec)] == ["channels", "height", "width", "stride"]
