"""Conv2d with norm/activation, and the small helpers of wrappers.py."""

import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.layers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Linear,
    cat,
    get_norm,
    interpolate,
    move_device_like,
    nonzero_tuple,
    shapes_to_tensor,
)


def test_conv2d_norm_state_dict_keys_and_forward():
    conv = Conv2d(3, 4, kernel_size=3, padding=1, bias=False, norm=get_norm("FrozenBN", 4), activation=F.relu)
    assert sorted(conv.state_dict().keys()) == [
        "norm.bias",
        "norm.running_mean",
        "norm.running_var",
        "norm.weight",
        "weight",
    ]
    conv.norm.bias.copy_(torch.tensor([-0.5, 0.0, 0.5, 1.0]))
    x = torch.randn(2, 3, 5, 6, generator=torch.Generator().manual_seed(0))
    ref = F.relu(F.conv2d(x, conv.weight, None, 1, 1) + conv.norm.bias.view(1, -1, 1, 1))
    torch.testing.assert_close(conv(x), ref, rtol=1e-5, atol=1e-5)


def test_conv2d_plain_is_nn_conv2d():
    conv = Conv2d(2, 3, 1, stride=2)
    assert isinstance(conv, nn.Conv2d) and conv.norm is None and conv.activation is None
    assert sorted(conv.state_dict().keys()) == ["bias", "weight"]
    x = torch.randn(1, 2, 4, 4)
    torch.testing.assert_close(conv(x), nn.Conv2d.forward(conv, x))
    nested = nn.Sequential()
    nested.add_module("res2", Conv2d(2, 3, 1, norm=nn.BatchNorm2d(3)))
    assert "res2.norm.running_var" in nested.state_dict()


def test_aliases_and_cat():
    assert ConvTranspose2d is nn.ConvTranspose2d and BatchNorm2d is nn.BatchNorm2d
    assert Linear is nn.Linear and interpolate is F.interpolate
    t = torch.ones(2)
    assert cat([t]) is t
    assert cat([t, torch.zeros(1)]).tolist() == [1, 1, 0]


def test_nonzero_tuple_shapes_to_tensor_move_device_like():
    rows, cols = nonzero_tuple(torch.tensor([[0, 1], [1, 0]]))
    assert rows.tolist() == [0, 1] and cols.tolist() == [1, 0]
    assert shapes_to_tensor([3, 4]).tolist() == [3, 4]
    assert move_device_like(torch.ones(1), torch.zeros(1)).device.type == "cpu"
