"""ResNet / FPN backbones: upstream state_dict keys, output specs, and numerics vs torchvision."""

import math

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops import feature_pyramid_network as tv_fpn

from detectron2_export.errors import ConfigError
from detectron2_export.layers import FrozenBatchNorm2d, ShapeSpec
from detectron2_export.modeling import BACKBONE_REGISTRY, FPN, Backbone, ResNet, build_backbone
from detectron2_export.modeling.backbone import (
    BasicBlock,
    BasicStem,
    BottleneckBlock,
    LastLevelMaxPool,
    LastLevelP6P7,
    make_stage,
)

from .stubs import shapes_of, upstream_keys, zoo_cfg

MODELS = {
    "mask_rcnn_R_50_FPN_3x": "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml",
    "mask_rcnn_R_50_C4_3x": "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml",
    "faster_rcnn_R_50_DC5_3x": "COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml",
    "retinanet_R_50_FPN_3x": "COCO-Detection/retinanet_R_50_FPN_3x.yaml",
}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_backbone_has_upstream_keys_and_shapes(name):
    backbone = build_backbone(zoo_cfg(MODELS[name]))
    assert shapes_of(backbone) == upstream_keys(name, "backbone.")


def test_r50_fpn_output_shape_and_size_divisibility():
    backbone = build_backbone(zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"]))
    assert isinstance(backbone, FPN)
    assert backbone.size_divisibility == 32
    assert backbone.padding_constraints == {}
    assert backbone.output_shape() == {f"p{i}": ShapeSpec(channels=256, stride=2**i) for i in range(2, 7)}
    assert backbone.bottom_up.output_shape() == {
        "res2": ShapeSpec(channels=256, stride=4),
        "res3": ShapeSpec(channels=512, stride=8),
        "res4": ShapeSpec(channels=1024, stride=16),
        "res5": ShapeSpec(channels=2048, stride=32),
    }


def test_c4_dc5_retinanet_output_shapes():
    c4 = build_backbone(zoo_cfg(MODELS["mask_rcnn_R_50_C4_3x"]))
    assert c4.output_shape() == {"res4": ShapeSpec(channels=1024, stride=16)}
    assert c4.size_divisibility == 0
    assert not hasattr(c4, "res5")  # stages after the last output are not built

    dc5 = build_backbone(zoo_cfg(MODELS["faster_rcnn_R_50_DC5_3x"]))
    assert dc5.output_shape() == {"res5": ShapeSpec(channels=2048, stride=16)}
    for block in dc5.res5:  # every res5 block is dilated, and only the first projects
        assert block.conv2.dilation == (2, 2) and block.conv2.padding == (2, 2)
        assert block.conv1.stride == (1, 1) and block.conv2.stride == (1, 1)

    retina = build_backbone(zoo_cfg(MODELS["retinanet_R_50_FPN_3x"]))
    assert retina.output_shape() == {f"p{i}": ShapeSpec(channels=256, stride=2**i) for i in range(3, 8)}
    assert retina.size_divisibility == 32
    assert retina.top_block.in_feature == "res5"


def _small_fpn_cfg():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.FPN.OUT_CHANNELS = 16
    return cfg


def test_fpn_forward_shapes_on_padded_input():
    backbone = build_backbone(_small_fpn_cfg()).eval()
    x = torch.rand(2, 3, 96, 160)  # multiples of 32
    with torch.no_grad():
        out = backbone(x)
    assert list(out) == ["p2", "p3", "p4", "p5", "p6"]
    for name, feature in out.items():
        stride = backbone.output_shape()[name].stride
        assert feature.shape == (2, 16, math.ceil(96 / stride), math.ceil(160 / stride))


def test_stride_in_1x1_places_the_stride():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    assert cfg.MODEL.RESNETS.STRIDE_IN_1X1
    block = build_backbone(cfg).bottom_up.res3[0]
    assert block.conv1.stride == (2, 2) and block.conv2.stride == (1, 1)
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    block = build_backbone(cfg).bottom_up.res3[0]
    assert block.conv1.stride == (1, 1) and block.conv2.stride == (2, 2)


def test_resnext_32x8d_groups_and_widths():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.DEPTH = 101
    cfg.MODEL.RESNETS.NUM_GROUPS = 32
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 8
    resnet = build_backbone(cfg).bottom_up
    assert len(resnet.res4) == 23
    # bottleneck width 32 * 8 = 256 in res2, doubled at each stage
    for stage, width in zip(("res2", "res3", "res4", "res5"), (256, 512, 1024, 2048)):
        conv2 = getattr(resnet, stage)[0].conv2
        assert conv2.groups == 32
        assert conv2.weight.shape == (width, width // 32, 3, 3)


def _load_torchvision_resnet(ours: ResNet, theirs: nn.Module) -> None:
    """Copy torchvision ResNet weights into our ResNet (conv1/bn1 -> stem.conv1(.norm) ...)."""
    renames = {"conv1.": "stem.conv1.", "bn1.": "stem.conv1.norm."}
    for i in range(1, 5):
        renames[f"layer{i}."] = f"res{i + 1}."
    state = {}
    for k, v in theirs.state_dict().items():
        if k.startswith("fc.") or k.endswith("num_batches_tracked"):
            continue
        for old, new in renames.items():
            if k.startswith(old):
                k = new + k[len(old) :]
                break
        k = k.replace(".downsample.0.", ".shortcut.").replace(".downsample.1.", ".shortcut.norm.")
        for j in (1, 2, 3):
            k = k.replace(f".bn{j}.", f".conv{j}.norm.")
        state[k] = v
    ours.load_state_dict(state, strict=True)


def _randomize_bn(module: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.weight.data = torch.rand(n, generator=g) + 0.5
            m.bias.data = torch.randn(n, generator=g) * 0.1
            m.running_mean.data = torch.randn(n, generator=g) * 0.1
            m.running_var.data = torch.rand(n, generator=g) + 0.5


@pytest.mark.parametrize(
    "depth, groups, width, tv_builder",
    [
        (18, 1, 64, torchvision.models.resnet18),
        (50, 1, 64, torchvision.models.resnet50),
        (50, 32, 4, torchvision.models.resnext50_32x4d),
    ],
)
def test_resnet_matches_torchvision(depth, groups, width, tv_builder):
    """torchvision's ResNet is the v1.5 layout: stride in the 3x3 conv, i.e. STRIDE_IN_1X1=False."""
    torch.manual_seed(0)
    cfg = _small_fpn_cfg()
    cfg.MODEL.BACKBONE.NAME = "build_resnet_backbone"
    cfg.MODEL.RESNETS.DEPTH = depth
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64 if depth < 50 else 256
    cfg.MODEL.RESNETS.NUM_GROUPS = groups
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = width
    cfg.MODEL.RESNETS.STRIDE_IN_1X1 = False
    cfg.MODEL.RESNETS.OUT_FEATURES = ["stem", "res2", "res3", "res4", "res5"]
    ours = build_backbone(cfg).eval()
    theirs = tv_builder().eval()
    _randomize_bn(theirs, seed=1)
    _load_torchvision_resnet(ours, theirs)

    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        out = ours(x)
        y = theirs.maxpool(theirs.relu(theirs.bn1(theirs.conv1(x))))
        expected = {"stem": y}
        for i in range(1, 5):
            y = getattr(theirs, f"layer{i}")(y)
            expected[f"res{i + 1}"] = y
    assert list(out) == list(expected)
    for k in expected:
        torch.testing.assert_close(out[k], expected[k], rtol=1e-4, atol=1e-4, msg=k)


@pytest.mark.parametrize("top", ["maxpool", "p6p7"])
def test_fpn_matches_torchvision(top):
    """Same lateral/output convs, top-down nearest x2 path and extra levels as torchvision's FPN.

    torchvision's LastLevelP6P7 takes C5 ("res5") when its in/out channels differ, like ours.
    """
    torch.manual_seed(0)
    cfg = _small_fpn_cfg()
    if top == "p6p7":
        cfg.MODEL.BACKBONE.NAME = "build_retinanet_resnet_fpn_backbone"
        cfg.MODEL.FPN.IN_FEATURES = ["res3", "res4", "res5"]
    ours = build_backbone(cfg).eval()
    in_features = list(cfg.MODEL.FPN.IN_FEATURES)
    in_channels = [ours.bottom_up.output_shape()[f].channels for f in in_features]
    extra = tv_fpn.LastLevelMaxPool() if top == "maxpool" else tv_fpn.LastLevelP6P7(512, 16)
    theirs = FeaturePyramidNetwork(in_channels, 16, extra_blocks=extra).eval()
    for i, f in enumerate(in_features):
        stage = int(f[-1])
        lateral, output = getattr(ours, f"fpn_lateral{stage}"), getattr(ours, f"fpn_output{stage}")
        theirs.inner_blocks[i][0].load_state_dict(lateral.state_dict())
        theirs.layer_blocks[i][0].load_state_dict(output.state_dict())
    if top == "p6p7":
        for name in ("p6", "p7"):
            getattr(theirs.extra_blocks, name).load_state_dict(getattr(ours.top_block, name).state_dict())

    x = torch.randn(1, 3, 128, 96)
    with torch.no_grad():
        out = ours(x)
        bottom_up = ours.bottom_up(x)
        expected = theirs({f: bottom_up[f] for f in in_features})
    extra_names = ["p6"] if top == "maxpool" else ["p6", "p7"]
    assert list(out) == [f"p{f[-1]}" for f in in_features] + extra_names
    assert len(expected) == len(out)
    for ours_t, theirs_t in zip(out.values(), expected.values()):
        torch.testing.assert_close(ours_t, theirs_t, rtol=1e-4, atol=1e-4)


def test_fpn_avg_fuse_halves_the_sum():
    torch.manual_seed(0)
    bottom_up = ResNet(
        BasicStem(3, 64, norm="FrozenBN"),
        ResNet.make_default_stages(18, norm="FrozenBN"),
        out_features=["res4", "res5"],
    )
    sum_fpn = FPN(bottom_up, ["res4", "res5"], 8, fuse_type="sum").eval()
    avg_fpn = FPN(bottom_up, ["res4", "res5"], 8, fuse_type="avg").eval()
    avg_fpn.load_state_dict(sum_fpn.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        c = bottom_up(x)
        top = sum_fpn.fpn_lateral5(c["res5"])
        fused = sum_fpn.fpn_lateral4(c["res4"]) + top.repeat_interleave(2, 2).repeat_interleave(2, 3)
        torch.testing.assert_close(sum_fpn(x)["p4"], sum_fpn.fpn_output4(fused))
        torch.testing.assert_close(avg_fpn(x)["p4"], avg_fpn.fpn_output4(fused / 2))


def test_fpn_rejects_non_contiguous_strides_and_bad_fuse_type():
    bottom_up = ResNet(BasicStem(3, 64), ResNet.make_default_stages(18), out_features=["res2", "res4"])
    with pytest.raises(ValueError, match="not log2 contiguous"):
        FPN(bottom_up, ["res2", "res4"], 8)
    with pytest.raises(ValueError, match="fuse_type='max'"):
        FPN(bottom_up, ["res2"], 8, fuse_type="max")


def test_top_blocks_hand_computed():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    (p6,) = LastLevelMaxPool()(x)  # 1x1 kernel, stride 2: every other pixel
    torch.testing.assert_close(p6, torch.tensor([[[[0.0, 2.0], [8.0, 10.0]]]]))
    p6p7 = LastLevelP6P7(1, 1)
    for conv in (p6p7.p6, p6p7.p7):
        nn.init.zeros_(conv.weight)
        conv.weight.data[0, 0, 1, 1] = 1.0  # centre tap: a pure stride-2 subsampling
        nn.init.constant_(conv.bias, -3.0)
    p6, p7 = p6p7(x)
    torch.testing.assert_close(p6, torch.tensor([[[[-3.0, -1.0], [5.0, 7.0]]]]))
    torch.testing.assert_close(p7, torch.tensor([[[[-3.0]]]]))  # relu(p6)[0,0] = 0, minus 3


def test_freeze_at():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.NORM = "BN"
    cfg.MODEL.BACKBONE.FREEZE_AT = 2
    resnet = build_backbone(cfg).bottom_up
    assert not any(p.requires_grad for p in resnet.stem.parameters())
    assert not any(p.requires_grad for p in resnet.res2.parameters())
    assert all(p.requires_grad for p in resnet.res3.parameters())
    assert isinstance(resnet.res2[0].conv1.norm, FrozenBatchNorm2d)
    assert isinstance(resnet.res3[0].conv1.norm, nn.BatchNorm2d)


def test_unsupported_resnet_configs_raise_config_error():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 18, 64
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, True, True, True]
    with pytest.raises(ConfigError, match="DEFORM_ON_PER_STAGE=.*all False for R18/R34"):
        build_backbone(cfg)
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.DEPTH = 34  # RES2_OUT_CHANNELS stays 256
    with pytest.raises(ConfigError, match="RES2_OUT_CHANNELS=256, expected 64"):
        build_backbone(cfg)
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.RESNETS.RES5_DILATION = 4
    with pytest.raises(ConfigError, match="RES5_DILATION=4"):
        build_backbone(cfg)


def test_make_stage_per_block_arguments():
    blocks = make_stage(BasicBlock, 3, in_channels=8, out_channels=16, stride_per_block=[2, 1, 1], norm="")
    assert [b.stride for b in blocks] == [2, 1, 1]
    assert [b.in_channels for b in blocks] == [8, 16, 16]
    assert blocks[0].shortcut is not None and blocks[1].shortcut is None
    with pytest.raises(ValueError, match="stride_per_block has length 2"):
        make_stage(BasicBlock, 3, in_channels=8, out_channels=16, stride_per_block=[2, 1])
    with pytest.raises(ValueError, match="both stride_per_block and stride"):
        make_stage(BasicBlock, 1, in_channels=8, out_channels=8, stride_per_block=[1], stride=1)


def test_bottleneck_block_identity_when_convs_are_zero():
    """With a zero residual branch the block is relu(x) (no shortcut projection)."""
    block = BottleneckBlock(8, 8, bottleneck_channels=4, norm="")
    for conv in (block.conv1, block.conv2, block.conv3):
        nn.init.zeros_(conv.weight)
    x = torch.randn(2, 8, 5, 5)
    torch.testing.assert_close(block(x.clone()), torch.relu(x))


def test_resnet_classifier_output():
    torch.manual_seed(0)
    resnet = ResNet(BasicStem(3, 64), ResNet.make_default_stages(18), num_classes=10).eval()
    assert resnet._out_features == ["linear"]
    out = resnet(torch.rand(2, 3, 64, 64))
    assert out["linear"].shape == (2, 10)


@BACKBONE_REGISTRY.register()
class _TestOnlyPoolBackbone(Backbone):
    """Registered by this test module: a user backbone plugged in by config name."""

    def __init__(self, cfg, input_shape: ShapeSpec):
        super().__init__()
        self.factor = 4
        self._out_features = ["pool"]
        self._out_feature_channels = {"pool": input_shape.channels}
        self._out_feature_strides = {"pool": self.factor}

    def forward(self, x):
        return {"pool": nn.functional.avg_pool2d(x, self.factor)}


def test_registry_extension_builds_user_backbone():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.BACKBONE.NAME = "_TestOnlyPoolBackbone"
    backbone = build_backbone(cfg)
    assert isinstance(backbone, _TestOnlyPoolBackbone)
    assert backbone.output_shape() == {"pool": ShapeSpec(channels=3, stride=4)}
    assert backbone.size_divisibility == 0
    assert backbone(torch.ones(1, 3, 8, 8))["pool"].shape == (1, 3, 2, 2)


def test_build_backbone_errors():
    cfg = zoo_cfg(MODELS["mask_rcnn_R_50_FPN_3x"])
    cfg.MODEL.BACKBONE.NAME = "no_such_backbone"
    with pytest.raises(KeyError, match="no_such_backbone.*build_resnet_fpn_backbone"):
        build_backbone(cfg)


def test_stride_math_of_stem():
    stem = BasicStem(3, 8, norm="")
    assert stem.stride == 4
    assert stem(torch.rand(1, 3, 33, 65)).shape == (1, 8, math.ceil(33 / 4), math.ceil(65 / 4))
