"""ASPP: upstream's state_dict keys, and the output against the branches written out with F.conv2d."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.layers import ASPP


def _conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    return F.conv2d(x, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)


def test_state_dict_keys_as_upstream():
    aspp = ASPP(8, 4, [2, 4, 6], norm="BN", activation=nn.ReLU())
    per_norm = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    expected = []
    for prefix in ("convs.0", "convs.1", "convs.2", "convs.3"):
        expected += [f"{prefix}.weight"] + [f"{prefix}.norm.{k}" for k in per_norm]
    expected += ["convs.4.1.weight", "convs.4.1.bias", "project.weight"] + [f"project.norm.{k}" for k in per_norm]
    assert list(aspp.state_dict()) == expected
    separable = ASPP(8, 4, [1, 2, 3], norm="", activation=nn.ReLU(), use_depthwise_separable_conv=True)
    keys = list(separable.state_dict())
    assert keys[:6] == [
        "convs.0.weight", "convs.0.bias",
        "convs.1.depthwise.weight", "convs.1.depthwise.bias", "convs.1.pointwise.weight", "convs.1.pointwise.bias",
    ]
    assert keys[-4:] == ["convs.4.1.weight", "convs.4.1.bias", "project.weight", "project.bias"]


@pytest.mark.parametrize("pool_kernel_size", [None, (2, 3)])
def test_output_is_projected_concat_of_branches(pool_kernel_size):
    torch.manual_seed(0)
    aspp = ASPP(6, 5, [1, 2, 3], norm="", activation=nn.ReLU(), pool_kernel_size=pool_kernel_size).eval()
    for p in aspp.parameters():  # c2_xavier_fill zeroes the biases: make them count
        nn.init.uniform_(p, -0.5, 0.5)
    x = torch.randn(2, 6, 6, 9)
    branches = [F.relu(_conv(x, aspp.convs[i])) for i in range(4)]
    if pool_kernel_size is None:
        pooled = x.mean(dim=(2, 3), keepdim=True)
    else:
        pooled = F.avg_pool2d(x, pool_kernel_size, stride=1)
    pooled = F.relu(_conv(pooled, aspp.convs[4][1]))
    branches.append(F.interpolate(pooled, size=(6, 9), mode="bilinear", align_corners=False))
    expected = F.relu(_conv(torch.cat(branches, dim=1), aspp.project))
    torch.testing.assert_close(aspp(x), expected, rtol=1e-5, atol=1e-5)
    # global pooling gives one value per channel, broadcast over the image
    if pool_kernel_size is None:
        torch.testing.assert_close(branches[4], branches[4][:, :, :1, :1].expand(-1, -1, 6, 9), rtol=0, atol=1e-6)


def test_dilated_branches_keep_the_size_and_bad_arguments_raise():
    aspp = ASPP(4, 3, [6, 12, 18], norm="BN", activation=nn.ReLU(), dropout=0.1).eval()
    assert [c.dilation for c in aspp.convs[1:4]] == [(6, 6), (12, 12), (18, 18)]
    assert [c.padding for c in aspp.convs[1:4]] == [(6, 6), (12, 12), (18, 18)]
    assert aspp(torch.randn(1, 4, 7, 5)).shape == (1, 3, 7, 5)
    with pytest.raises(ValueError, match=r"ASPP: dilations=\[1, 2\], expected 3 dilations"):
        ASPP(4, 3, [1, 2], norm="", activation=nn.ReLU())
    pooled = ASPP(4, 3, [1, 2, 3], norm="", activation=nn.ReLU(), pool_kernel_size=(4, 4))
    with pytest.raises(ValueError, match=r"input size=\(6, 8\), expected multiples of pool_kernel_size=\(4, 4\)"):
        pooled(torch.randn(1, 4, 6, 8))
