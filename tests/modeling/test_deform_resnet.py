"""Deformable ResNet (MODEL.RESNETS.DEFORM_*): upstream's state_dict for the dconv zoo config, and
DeformBottleneckBlock's numerics against a reference assembled from plain convolutions and the
slow deformable-convolution loop."""

import pytest
import torch
from torch.nn import functional as F

from detectron2_export.layers import DeformConv, ModulatedDeformConv
from detectron2_export.modeling import build_backbone, build_model
from detectron2_export.modeling.backbone.resnet import BottleneckBlock, DeformBottleneckBlock

from ..layers.deform_conv_reference import naive_deform_conv
from .stubs import shapes_of, upstream_keys, zoo_cfg


def dconv_cfg():
    """Misc/mask_rcnn_R_50_FPN_3x_dconv_c3-c5.yaml: the R50-FPN Mask R-CNN with DCNv1 in res3-res5."""
    cfg = zoo_cfg("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, True, True, True]
    cfg.MODEL.RESNETS.DEFORM_MODULATED = False
    return cfg


def build_on_meta(cfg):
    """``build_model(cfg)`` with shapes only (the meta device): fast, and enough for keys."""
    cfg = cfg.clone()
    cfg.MODEL.DEVICE = "meta"
    with torch.device("meta"):
        return build_model(cfg)


def test_dconv_zoo_model_has_upstream_keys_and_shapes():
    assert shapes_of(build_on_meta(dconv_cfg())) == upstream_keys("mask_rcnn_R_50_FPN_3x_dconv_c3-c5", "")


def test_deform_blocks_only_in_the_stages_asked_for():
    cfg = dconv_cfg()
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, True, False, True]
    cfg.MODEL.RESNETS.DEFORM_MODULATED = True
    cfg.MODEL.RESNETS.DEFORM_NUM_GROUPS = 2
    with torch.device("meta"):
        resnet = build_backbone(cfg).bottom_up
    for stage, deform in zip(["res2", "res3", "res4", "res5"], [False, True, False, True]):
        for block in getattr(resnet, stage):
            assert type(block) is (DeformBottleneckBlock if deform else BottleneckBlock), stage
    block = resnet.res3[0]
    assert isinstance(block.conv2, ModulatedDeformConv) and block.conv2.deformable_groups == 2
    # 27 = 9 (dy, dx) pairs + 9 masks per deformable group; the deformable conv has no bias
    assert shapes_of(block)["conv2_offset.weight"] == [54, 128, 3, 3]
    assert "conv2.bias" not in block.state_dict()
    assert isinstance(resnet.res5[0].conv2, ModulatedDeformConv)


def _randomized_block(modulated: bool, deform_groups: int, dilation: int) -> DeformBottleneckBlock:
    torch.manual_seed(0)
    block = DeformBottleneckBlock(
        8, 16, bottleneck_channels=4, stride=2, num_groups=2, norm="", dilation=dilation,
        deform_modulated=modulated, deform_num_groups=deform_groups,
    ).eval()
    with torch.no_grad():
        block.conv2_offset.weight.normal_(std=0.3)  # offsets of about a pixel
        block.conv2_offset.bias.normal_(std=0.5)
    return block


@pytest.mark.parametrize("modulated,deform_groups,dilation", [(False, 1, 1), (True, 2, 1), (False, 2, 2)])
def test_block_matches_reference(modulated, deform_groups, dilation):
    block = _randomized_block(modulated, deform_groups, dilation)
    x = torch.randn(1, 8, 7, 6)
    w = {k: v.detach() for k, v in block.state_dict().items()}
    out1 = F.relu(F.conv2d(x, w["conv1.weight"]))
    offset_and_mask = F.conv2d(
        out1, w["conv2_offset.weight"], w["conv2_offset.bias"], stride=2, padding=dilation, dilation=dilation
    )
    positions = 9 * deform_groups
    # the first 2/3 of the channels are the offsets, the last 1/3 the mask logits
    offset = offset_and_mask[:, : 2 * positions]
    mask = offset_and_mask[:, 2 * positions :].sigmoid() if modulated else None
    assert offset_and_mask.shape[1] == (3 if modulated else 2) * positions
    out2 = F.relu(naive_deform_conv(out1, offset, w["conv2.weight"], None, 2, dilation, dilation, 2, mask))
    expected = F.relu(F.conv2d(out2, w["conv3.weight"]) + F.conv2d(x, w["shortcut.weight"], stride=2))
    with torch.no_grad():
        torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-4)


def test_new_block_starts_as_a_plain_bottleneck():
    """conv2_offset is zero-initialised (offsets 0): the block computes a BottleneckBlock."""
    kwargs = dict(bottleneck_channels=4, stride=2, num_groups=2, norm="FrozenBN")
    deform = DeformBottleneckBlock(8, 16, **kwargs).eval()
    assert isinstance(deform.conv2, DeformConv)
    assert not deform.conv2_offset.weight.any() and not deform.conv2_offset.bias.any()
    plain = BottleneckBlock(8, 16, **kwargs).eval()
    state = {k: v for k, v in deform.state_dict().items() if not k.startswith("conv2_offset.")}
    plain.load_state_dict(state)
    x = torch.randn(2, 8, 9, 8)
    with torch.no_grad():
        torch.testing.assert_close(deform(x), plain(x), rtol=1e-5, atol=1e-5)
