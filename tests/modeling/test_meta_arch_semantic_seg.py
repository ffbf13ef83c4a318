"""SemSegFPNHead and SemanticSegmentor: upstream keys, the scale-head computation, output sizes."""

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import (
    SEM_SEG_HEADS_REGISTRY,
    SemanticSegmentor,
    build_model,
    build_sem_seg_head,
)
from detectron2_export.modeling.meta_arch.semantic_seg import SemSegFPNHead

from .stubs import IdentityBackbone, shapes_of, upstream_keys, zoo_cfg

FPN_SHAPES = {f"p{i}": ShapeSpec(channels=256, stride=2**i) for i in range(2, 7)}


def test_head_from_panoptic_config_has_upstream_keys():
    cfg = zoo_cfg("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml")
    head = build_sem_seg_head(cfg, FPN_SHAPES)  # p6 is not in SEM_SEG_HEAD.IN_FEATURES
    assert type(head) is SEM_SEG_HEADS_REGISTRY.get("SemSegFPNHead")
    assert shapes_of(head) == upstream_keys("panoptic_fpn_R_50_3x", "sem_seg_head.")
    assert head.in_features == ["p2", "p3", "p4", "p5"]
    assert head.ignore_value == 255 and head.common_stride == 4


def _small_head() -> SemSegFPNHead:
    torch.manual_seed(0)
    shapes = {"p3": ShapeSpec(channels=4, stride=8), "p2": ShapeSpec(channels=4, stride=4)}
    return SemSegFPNHead(input_shape=shapes, num_classes=3, conv_dims=6, common_stride=4, norm="").eval()


def test_head_matches_explicit_computation():
    head = _small_head()
    assert head.in_features == ["p2", "p3"]  # sorted by stride
    g = torch.Generator().manual_seed(1)
    features = {"p2": torch.randn(2, 4, 8, 10, generator=g), "p3": torch.randn(2, 4, 4, 5, generator=g)}
    with torch.no_grad():
        logits, losses = head(features)
        conv2, conv3 = head.p2[0], head.p3[0]
        p2 = F.relu(F.conv2d(features["p2"], conv2.weight, conv2.bias, padding=1))
        p3 = F.relu(F.conv2d(features["p3"], conv3.weight, conv3.bias, padding=1))
        p3 = F.interpolate(p3, scale_factor=2, mode="bilinear", align_corners=False)
        x = F.conv2d(p2 + p3, head.predictor.weight, head.predictor.bias)
        expected = F.interpolate(x, scale_factor=4, mode="bilinear", align_corners=False)
    assert losses == {}
    assert logits.shape == (2, 3, 32, 40)
    torch.testing.assert_close(logits, expected)


def test_scale_head_lengths():
    head = SemSegFPNHead(input_shape=FPN_SHAPES, num_classes=2, conv_dims=32, common_stride=4, norm="GN")
    # log2(stride / 4) conv stages, at least one; each upsamples x2 unless already at stride 4
    assert [len(getattr(head, f"p{i}")) for i in range(2, 7)] == [1, 2, 4, 6, 8]
    assert isinstance(head.p3[1], torch.nn.Upsample)
    assert head.p2[0].bias is None and head.predictor.bias is not None


def test_empty_input_shape_raises():
    with pytest.raises(ValueError, match="cannot be empty"):
        SemSegFPNHead(input_shape={}, num_classes=2, conv_dims=8, common_stride=4)


class _ConstantHead(torch.nn.Module):
    """Class 1 logit = the image's channel 0, class 0 = 0; full resolution."""

    def forward(self, features, targets=None):
        x = features["img"][:, :1]
        return torch.cat([torch.zeros_like(x), x], dim=1), {}


def test_semantic_segmentor_crops_and_resizes_per_image():
    model = SemanticSegmentor(
        backbone=IdentityBackbone(size_divisibility=16),
        sem_seg_head=_ConstantHead(),
        pixel_mean=(1.0, 0.0, 0.0),
        pixel_std=(1.0, 1.0, 1.0),
    ).eval()
    img = torch.zeros(3, 10, 12)
    img[0, :5] = 3.0  # top half: class 1 logit 2; bottom half: -1
    out = model([{"image": img, "height": 20, "width": 24}, {"image": torch.ones(3, 16, 16)}])
    assert out[0]["sem_seg"].shape == (2, 20, 24)  # the padded 16x16 batch is cropped to 10x12 first
    assert out[1]["sem_seg"].shape == (2, 16, 16)
    labels = out[0]["sem_seg"].argmax(0)
    assert (labels[:10] == 1).all() and (labels[10:] == 0).all()
    torch.testing.assert_close(out[0]["sem_seg"][1, 0, 0], torch.tensor(2.0))
    torch.testing.assert_close(out[0]["sem_seg"][1, -1, -1], torch.tensor(-1.0))


def test_build_semantic_segmentor_from_config():
    cfg = zoo_cfg("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml")
    cfg.MODEL.META_ARCHITECTURE = "SemanticSegmentor"
    cfg.MODEL.RESNETS.DEPTH = 18
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 64
    cfg.MODEL.FPN.OUT_CHANNELS = 32
    cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM = 32
    model = build_model(cfg).eval()
    assert type(model) is SemanticSegmentor
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 50, 70) * 255, "height": 25, "width": 35}])
    assert out[0]["sem_seg"].shape == (54, 25, 35)
