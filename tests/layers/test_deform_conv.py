"""DeformConv / ModulatedDeformConv against a hand-computed case and a per-sample Python loop
(``deform_conv_reference.naive_deform_conv``)."""

import pytest
import torch
from torch.nn import functional as F

from detectron2_export.layers import DeformConv, ModulatedDeformConv

from .deform_conv_reference import naive_deform_conv


def test_hand_computed_shift_and_border():
    """1x1 kernel of weight 1, every sample shifted by (dy, dx) = (0.5, 0.25) on the ramp 4y + x.

    Inside, bilinear sampling of a linear ramp is exact: 4 (y + 0.5) + x + 0.25. On the last row
    the lower corner row (y = 4) is outside: only half of row 3 is taken, 0.5 * (12 + x + 0.25);
    on the last column only 0.75 of column 3; at (3, 3) 0.5 * 0.75 * 15.
    """
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    offset = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1).expand(1, 2, 4, 4).contiguous()
    conv = DeformConv(1, 1, kernel_size=1)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    expected = torch.tensor(
        [
            [2.25, 3.25, 4.25, 0.75 * (0.5 * 3 + 0.5 * 7)],
            [6.25, 7.25, 8.25, 0.75 * (0.5 * 7 + 0.5 * 11)],
            [10.25, 11.25, 12.25, 0.75 * (0.5 * 11 + 0.5 * 15)],
            [0.5 * 12.25, 0.5 * 13.25, 0.5 * 14.25, 0.5 * 0.75 * 15],
        ]
    )
    torch.testing.assert_close(conv(x, offset)[0, 0], expected)


def test_zero_offsets_equal_a_plain_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 9, 7, generator=g)
    conv = ModulatedDeformConv(4, 6, 3, stride=2, padding=2, dilation=2, groups=2)
    with torch.no_grad():
        conv.bias.normal_(generator=g)
    offset = torch.zeros(2, 18, 5, 4)
    mask = torch.ones(2, 9, 5, 4)
    expected = F.conv2d(x, conv.weight, conv.bias, stride=2, padding=2, dilation=2, groups=2)
    torch.testing.assert_close(conv(x, offset, mask), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "stride,padding,dilation,groups,deform_groups",
    [(1, 1, 1, 1, 1), (2, 1, 1, 2, 1), (1, 2, 2, 1, 2), (2, 0, 1, 2, 2)],
)
@pytest.mark.parametrize("modulated", [False, True])
def test_matches_naive_loop_reference(stride, padding, dilation, groups, deform_groups, modulated):
    g = torch.Generator().manual_seed(stride + 3 * padding + 5 * dilation + 7 * groups + 11 * deform_groups)
    x = torch.randn(2, 4, 6, 5, generator=g)
    cls = ModulatedDeformConv if modulated else DeformConv
    conv = cls(4, 4, 3, stride=stride, padding=padding, dilation=dilation, groups=groups,
               deformable_groups=deform_groups)
    if modulated:
        with torch.no_grad():
            conv.bias.normal_(generator=g)
    ho = (6 + 2 * padding - (2 * dilation + 1)) // stride + 1
    wo = (5 + 2 * padding - (2 * dilation + 1)) // stride + 1
    # offsets of up to 3 pixels: samples fall between pixels and some outside the image
    offset = (torch.rand(2, 2 * deform_groups * 9, ho, wo, generator=g) - 0.5) * 6
    mask = torch.rand(2, deform_groups * 9, ho, wo, generator=g) if modulated else None
    got = conv(x, offset, mask) if modulated else conv(x, offset)
    bias = None if conv.bias is None else conv.bias.detach()
    expected = naive_deform_conv(x, offset, conv.weight.detach(), bias, stride, padding, dilation, groups, mask)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_norm_and_activation_follow_the_convolution():
    conv = DeformConv(2, 2, 1, norm=torch.nn.GroupNorm(1, 2), activation=torch.relu)
    x = torch.randn(1, 2, 3, 3)
    offset = torch.zeros(1, 2, 3, 3)
    expected = torch.relu(conv.norm(F.conv2d(x, conv.weight)))
    torch.testing.assert_close(conv(x, offset), expected)


def test_parameters_as_detectron2():
    assert [k for k, _ in DeformConv(4, 8, 3, norm=torch.nn.BatchNorm2d(8)).state_dict().items()][:1] == ["weight"]
    assert "bias" not in DeformConv(4, 8, 3).state_dict()
    state = ModulatedDeformConv(4, 8, 3, groups=2).state_dict()
    assert {k: list(v.shape) for k, v in state.items()} == {"weight": [8, 2, 3, 3], "bias": [8]}
    assert torch.equal(state["bias"], torch.zeros(8))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match=r"DeformConv: bias=True, expected False"):
        DeformConv(4, 4, 3, bias=True)
    with pytest.raises(ValueError, match=r"out_channels=5, expected both divisible by groups=2"):
        DeformConv(4, 5, 3, groups=2)
    conv = DeformConv(4, 4, 3, padding=1, deformable_groups=2)
    with pytest.raises(ValueError, match=r"offset of shape \(1, 18, 5, 5\), expected \(1, 36, 5, 5\)"):
        conv(torch.zeros(1, 4, 5, 5), torch.zeros(1, 18, 5, 5))
    modulated = ModulatedDeformConv(4, 4, 3, padding=1)
    with pytest.raises(ValueError, match=r"mask of shape \(1, 18, 5, 5\), expected \(1, 9, 5, 5\)"):
        modulated(torch.zeros(1, 4, 5, 5), torch.zeros(1, 18, 5, 5), torch.zeros(1, 18, 5, 5))


def test_empty_batch():
    conv = DeformConv(4, 3, 3, padding=1)
    assert conv(torch.zeros(0, 4, 5, 6), torch.zeros(0, 18, 5, 6)).shape == (0, 3, 5, 6)
