"""RegNet backbones against independent references: the stage schedule of the RegNet paper,
published RegNetX/RegNetY widths and depths, output shapes/strides, and a block computed with
functional ops."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from detectron2_export.errors import ConfigError
from detectron2_export.layers import FrozenBatchNorm2d
from detectron2_export.modeling.backbone.regnet import (
    SE,
    AnyNet,
    RegNet,
    ResBasicBlock,
    ResBottleneckBlock,
    ResStem,
    SimpleStem,
    VanillaBlock,
    adjust_block_compatibility,
    generate_regnet_parameters,
)

# (w_a, w_0, w_m, depth, group width, SE ratio) -> the per-stage depths and widths published for
# these models in the RegNet paper's model zoo (pycls, "dds" baselines).
PUBLISHED = {
    "RegNetX-200MF": ((36.44, 24, 2.49, 13, 8, 0.0), [1, 1, 4, 7], [24, 56, 152, 368]),
    "RegNetX-4.0GF": ((38.65, 96, 2.43, 23, 40, 0.0), [2, 5, 14, 2], [80, 240, 560, 1360]),
    "RegNetY-4.0GF": ((31.41, 96, 2.24, 22, 64, 0.25), [2, 6, 12, 2], [128, 192, 512, 1088]),
}


def _paper_schedule(w_a, w_0, w_m, depth, q=8):
    """Sec. 3.3 of the paper, one block at a time: u_j = w_0 + w_a * j, s_j = round(log_{w_m}(u_j / w_0)),
    w_j = w_0 * w_m ** s_j rounded to a multiple of q; equal consecutive widths form a stage."""
    widths = []
    for j in range(depth):
        u = w_0 + w_a * j
        s = round(math.log(u / w_0) / math.log(w_m))
        widths.append(int(round(w_0 * w_m**s / q)) * q)
    stages = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    return [w for w, _ in stages], [d for _, d in stages], widths


def _compatible_width(w, g):
    """Bottleneck ratio 1: the width rounded to a multiple of min(g, w) (at least one group)."""
    g = min(g, w)
    return max(g, int(round(w / g) * g))


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_stage_schedule_matches_paper_and_published_models(name):
    (w_a, w_0, w_m, depth, g, _), depths, widths = PUBLISHED[name]
    ws, ds, num_stages, _, ws_all, ws_cont = generate_regnet_parameters(w_a, w_0, w_m, depth)
    ref_ws, ref_ds, ref_all = _paper_schedule(w_a, w_0, w_m, depth)
    assert (ws, ds, ws_all) == (ref_ws, ref_ds, ref_all)
    assert num_stages == 4 and sum(ds) == depth
    assert ws_cont == pytest.approx([w_0 + w_a * j for j in range(depth)], abs=1e-9)
    adjusted, ratios, groups = adjust_block_compatibility(ws, [1.0] * len(ws), [g] * len(ws))
    assert adjusted == [_compatible_width(w, g) for w in ws]
    assert (ds, adjusted) == (depths, widths)
    assert groups == [g] * 4 and ratios == [1.0] * 4


def _bn(m, t):
    """Inference batch norm written out: (t - mean) / sqrt(var + eps) * weight + bias."""
    return (t - m.running_mean[:, None, None]) / torch.sqrt(m.running_var[:, None, None] + m.eps) * m.weight[
        :, None, None
    ] + m.bias[:, None, None]


def _regnet(name, **kwargs):
    (w_a, w_0, w_m, depth, g, se), _, _ = PUBLISHED[name]
    return RegNet(
        stem_class=SimpleStem, stem_width=32, block_class=ResBottleneckBlock, depth=depth, w_a=w_a, w_0=w_0,
        w_m=w_m, group_width=g, se_ratio=se, **kwargs,
    )


def test_output_shapes_and_strides():
    torch.manual_seed(0)
    model = _regnet("RegNetX-200MF", norm="BN", out_features=["stem", "s1", "s2", "s3", "s4"]).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    widths = [32] + PUBLISHED["RegNetX-200MF"][2]
    strides = [2, 4, 8, 16, 32]
    for (name, spec), w, s in zip(model.output_shape().items(), widths, strides):
        assert (spec.channels, spec.stride) == (w, s)
        assert out[name].shape == (2, w, 64 // s, 96 // s)
    # stage i has depth d_i: blocks b1..b{d_i}, the first one strided with a projection shortcut
    for i, d in enumerate(PUBLISHED["RegNetX-200MF"][1]):
        stage = getattr(model, f"s{i + 1}")
        assert [n for n, _ in stage.named_children()] == [f"b{k + 1}" for k in range(d)]
        assert stage.b1.proj_block and stage.b1.proj.stride == (2, 2)
        assert all(not block.proj_block for block in list(stage.children())[1:])


def test_res_stem_has_stride_4():
    stem = ResStem(3, 16, "BN", lambda: nn.ReLU(inplace=True)).eval()
    assert stem(torch.randn(1, 3, 32, 48)).shape == (1, 16, 8, 12) and stem.stride == 4


def test_regnety_block_equals_functional_reference():
    """A RegNetY bottleneck block (grouped conv, SE, projection) computed by hand with F.conv2d."""
    torch.manual_seed(0)
    params = {"bot_mul": 1.0, "group_w": 4, "se_r": 0.25}
    block = ResBottleneckBlock(8, 16, 2, "BN", lambda: nn.ReLU(inplace=True), params).eval()
    for m in block.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 8, 10, 12)

    f = block.f
    y = F.relu(_bn(f.a_bn, F.conv2d(x, f.a.weight)))
    y = F.relu(_bn(f.b_bn, F.conv2d(y, f.b.weight, stride=2, padding=1, groups=16 // 4)))
    gate = y.mean(dim=(2, 3), keepdim=True)
    gate = F.relu(F.conv2d(gate, f.se.f_ex[0].weight, f.se.f_ex[0].bias))
    gate = torch.sigmoid(F.conv2d(gate, f.se.f_ex[2].weight, f.se.f_ex[2].bias))
    y = _bn(f.c_bn, F.conv2d(y * gate, f.c.weight))
    shortcut = _bn(block.bn, F.conv2d(x, block.proj.weight, stride=2))
    expected = F.relu(shortcut + y)
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    assert f.se.f_ex[0].out_channels == 2  # round(8 * 0.25): SE width from the block input width


def test_se_hand_computed():
    se = SE(2, 1, nn.ReLU)
    with torch.no_grad():
        se.f_ex[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(1, 2, 1, 1))
        se.f_ex[0].bias.fill_(0.5)
        se.f_ex[2].weight.copy_(torch.tensor([2.0, 0.0]).reshape(2, 1, 1, 1))
        se.f_ex[2].bias.copy_(torch.tensor([0.0, 1.0]))
    x = torch.tensor([[[[1.0, 3.0]], [[0.0, 2.0]]]])  # channel means 2 and 1
    hidden = max(0.0, 2.0 - 1.0 + 0.5)  # 1.5
    gates = [1 / (1 + math.exp(-2 * hidden)), 1 / (1 + math.exp(-1.0))]
    expected = torch.tensor([[[[1.0 * gates[0], 3.0 * gates[0]]], [[0.0, 2.0 * gates[1]]]]])
    torch.testing.assert_close(se(x), expected)


def test_freeze_at_converts_stem_and_first_stage():
    model = _regnet("RegNetX-200MF", norm="BN", freeze_at=2, out_features=["s4"])
    assert isinstance(model.stem.bn, FrozenBatchNorm2d)
    assert isinstance(model.s1.b1.f.a_bn, FrozenBatchNorm2d)
    assert isinstance(model.s2.b1.f.a_bn, nn.BatchNorm2d)
    assert not any(p.requires_grad for p in model.s1.parameters())
    assert all(p.requires_grad for p in model.s2.parameters())


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="w_0"):
        generate_regnet_parameters(10.0, 20, 2.0, 5)  # w_0 not a multiple of 8
    with pytest.raises(ValueError, match="one value per stage"):
        AnyNet(stem_class=SimpleStem, stem_width=8, block_class=ResBottleneckBlock, depths=[1, 1], widths=[8],
               group_widths=[8], strides=[2], bottleneck_ratios=[1.0], se_ratio=0.0, activation_class=nn.ReLU)
    with pytest.raises(ConfigError, match="out_features"):
        _regnet("RegNetX-200MF", out_features=["res5"])


def test_vanilla_and_basic_blocks_equal_functional_reference():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 10)
    vanilla = VanillaBlock(4, 8, 2, "BN", nn.ReLU, {}).eval()
    basic = ResBasicBlock(4, 8, 2, "BN", nn.ReLU, {}).eval()
    for m in list(vanilla.modules()) + list(basic.modules()):
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)

    def two_convs(m, t, last_relu):
        t = F.relu(_bn(m.a_bn, F.conv2d(t, m.a.weight, stride=2, padding=1)))
        t = _bn(m.b_bn, F.conv2d(t, m.b.weight, padding=1))
        return F.relu(t) if last_relu else t

    with torch.no_grad():
        torch.testing.assert_close(vanilla(x), two_convs(vanilla, x, True), rtol=1e-5, atol=1e-5)
        shortcut = _bn(basic.bn, F.conv2d(x, basic.proj.weight, stride=2))
        torch.testing.assert_close(basic(x), F.relu(shortcut + two_convs(basic.f, x, False)), rtol=1e-5, atol=1e-5)
    assert basic.stride == vanilla.stride == 2 and basic.out_channels == 8
