"""FCOS: upstream's state_dict for fcos_R_50_FPN_1x (built with the arguments of detectron2's
``configs/common/models/fcos.py``), Box2BoxTransformLinear, and the decoding on a hand-made case."""

import math

import pytest
import torch
from torch import nn

from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import Backbone
from detectron2_export.modeling.backbone import FPN, BasicStem, LastLevelP6P7, ResNet
from detectron2_export.modeling.box_regression import Box2BoxTransformLinear
from detectron2_export.modeling.meta_arch import FCOS
from detectron2_export.modeling.meta_arch.fcos import FCOSHead

from .stubs import shapes_of, upstream_keys

IMAGENET_BGR256_MEAN = [103.530, 116.280, 123.675]
IMAGENET_BGR256_STD = [1.0, 1.0, 1.0]


def fcos_r50_fpn(num_classes: int = 80) -> FCOS:
    """COCO-Detection/fcos_R_50_FPN_1x.py's model: RetinaNet's R50-FPN with P6/P7 from P5,
    FCOSHead with GroupNorm, score threshold 0.2, NMS 0.6, res2 and the stem frozen."""
    bottom_up = ResNet(
        stem=BasicStem(in_channels=3, out_channels=64, norm="FrozenBN"),
        stages=ResNet.make_default_stages(depth=50, stride_in_1x1=True, norm="FrozenBN"),
        out_features=["res3", "res4", "res5"],
        freeze_at=2,
    )
    backbone = FPN(
        bottom_up=bottom_up,
        in_features=["res3", "res4", "res5"],
        out_channels=256,
        top_block=LastLevelP6P7(in_channels=256, out_channels=256, in_feature="p5"),
    )
    head = FCOSHead(
        input_shape=[ShapeSpec(channels=256)] * 5,
        num_classes=num_classes,
        conv_dims=[256, 256, 256, 256],
        prior_prob=0.01,
        norm="GN",
    )
    return FCOS(
        backbone=backbone,
        head=head,
        head_in_features=["p3", "p4", "p5", "p6", "p7"],
        num_classes=num_classes,
        test_score_thresh=0.2,
        test_nms_thresh=0.6,
        pixel_mean=IMAGENET_BGR256_MEAN,
        pixel_std=IMAGENET_BGR256_STD,
    )


def test_fcos_r50_fpn_has_upstream_keys_and_shapes():
    with torch.device("meta"):
        model = fcos_r50_fpn()
    assert shapes_of(model) == upstream_keys("fcos_R_50_FPN_1x", "")
    assert model.anchor_generator.strides == [8, 16, 32, 64, 128]


def test_box2box_transform_linear_hand_computed():
    t = Box2BoxTransformLinear(normalize_by_size=True)
    anchors = torch.tensor([[16.0, 8.0, 24.0, 16.0]])  # centre (20, 12), stride 8
    targets = torch.tensor([[12.0, 8.0, 36.0, 24.0]])
    deltas = t.get_deltas(anchors, targets)
    torch.testing.assert_close(deltas, torch.tensor([[1.0, 0.5, 2.0, 1.5]]))
    torch.testing.assert_close(t.apply_deltas(deltas, anchors), targets)
    # negative distances are clamped to 0: the box keeps its anchor centre inside
    torch.testing.assert_close(
        t.apply_deltas(torch.tensor([[-1.0, 0.5, 2.0, -3.0]]), anchors), torch.tensor([[20.0, 8.0, 36.0, 12.0]])
    )
    unnormalized = Box2BoxTransformLinear(normalize_by_size=False)
    torch.testing.assert_close(unnormalized.get_deltas(anchors, targets), torch.tensor([[8.0, 4.0, 16.0, 12.0]]))


class _TwoLevelBackbone(Backbone):
    """Zero features "p3" (stride 8) and "p4" (stride 16): the stub head ignores them."""

    def __init__(self):
        super().__init__()
        self._out_features = ["p3", "p4"]
        self._out_feature_channels = {"p3": 1, "p4": 1}
        self._out_feature_strides = {"p3": 8, "p4": 16}

    def forward(self, x):
        n, _, h, w = x.shape
        return {"p3": x.new_zeros(n, 1, h // 8, w // 8), "p4": x.new_zeros(n, 1, h // 16, w // 16)}


class _FixedHead(nn.Module):
    def __init__(self, predictions):
        super().__init__()
        self.predictions = predictions

    def forward(self, features):
        return tuple([t.clone() for t in level] for level in self.predictions)


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _hand_made_fcos():
    """2 classes, a 32x32 image: p3 is 4x4 (anchor centres 4, 12, 20, 28), p4 is 2x2 (8, 24).

    A: p3 (y=1, x=2), centre (20, 12), class 0: p=0.9, centerness 0.4 -> score sqrt(0.36) = 0.6;
       distances (1, 0.5, 2, 1.5) strides -> box (12, 8, 36, 24).
    B: p3 (y=1, x=1), centre (12, 12), class 0: p=0.8, centerness 0.2 -> 0.4; box (4, 4, 28, 20):
       IoU with A = 192 / 576, kept.
    C: p3 (y=1, x=2), class 1: p=0.7 -> sqrt(0.28) ~ 0.529; A's box: kept (another class).
    D: p3 (y=3, x=3), class 1: p=0.3, centerness 0.1 -> sqrt(0.03) ~ 0.173 < 0.2, dropped
       although p > 0.2 (the threshold is on the combined score).
    E: p4 (y=0, x=1), centre (24, 8), class 0: p=0.5, centerness 0.5 -> 0.5; distances
       (0.75, 0.125, 0.75, 0.875) strides of 16 -> box (12, 6, 36, 22): IoU with A = 336 / 432
       > 0.6, suppressed by NMS.
    """
    strong = -20.0
    logits3 = torch.full((1, 2, 4, 4), strong)
    ctr3 = torch.full((1, 1, 4, 4), strong)
    deltas3 = torch.zeros(1, 4, 4, 4)
    logits3[0, 0, 1, 2], ctr3[0, 0, 1, 2] = _logit(0.9), _logit(0.4)
    deltas3[0, :, 1, 2] = torch.tensor([1.0, 0.5, 2.0, 1.5])
    logits3[0, 1, 1, 2] = _logit(0.7)
    logits3[0, 0, 1, 1], ctr3[0, 0, 1, 1] = _logit(0.8), _logit(0.2)
    deltas3[0, :, 1, 1] = torch.tensor([1.0, 1.0, 2.0, 1.0])
    logits3[0, 1, 3, 3], ctr3[0, 0, 3, 3] = _logit(0.3), _logit(0.1)
    logits4 = torch.full((1, 2, 2, 2), strong)
    ctr4 = torch.full((1, 1, 2, 2), strong)
    deltas4 = torch.zeros(1, 4, 2, 2)
    logits4[0, 0, 0, 1], ctr4[0, 0, 0, 1] = _logit(0.5), _logit(0.5)
    deltas4[0, :, 0, 1] = torch.tensor([0.75, 0.125, 0.75, 0.875])
    head = _FixedHead([[logits3, logits4], [deltas3, deltas4], [ctr3, ctr4]])
    return FCOS(
        backbone=_TwoLevelBackbone(), head=head, num_classes=2, pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3
    ).eval()


def test_decoding_hand_made_case():
    model = _hand_made_fcos()
    assert model.head_in_features == ["p3", "p4"]
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 32, 32)}])[0]["instances"]
    assert out.image_size == (32, 32)
    torch.testing.assert_close(out.scores, torch.tensor([0.6, math.sqrt(0.28), 0.4]))
    assert out.pred_classes.tolist() == [0, 1, 0]
    # boxes are clipped to the 32x32 image by the post-processing
    expected = torch.tensor([[12.0, 8.0, 32.0, 24.0], [12.0, 8.0, 32.0, 24.0], [4.0, 4.0, 28.0, 20.0]])
    torch.testing.assert_close(out.pred_boxes.tensor, expected)


@pytest.mark.parametrize("topk_candidates,max_detections,expected_scores", [
    (1, 100, [0.6]),  # p3 keeps its best candidate only; p4's is suppressed
    (1000, 2, [0.6, math.sqrt(0.28)]),
])
def test_topk_limits(topk_candidates, max_detections, expected_scores):
    model = _hand_made_fcos()
    model.test_topk_candidates = topk_candidates
    model.max_detections_per_image = max_detections
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 32, 32)}])[0]["instances"]
    torch.testing.assert_close(out.scores, torch.tensor(expected_scores))


def test_head_outputs_and_centerness_on_the_box_branch():
    torch.manual_seed(0)
    head = FCOSHead(input_shape=[ShapeSpec(channels=32)] * 2, num_classes=3, conv_dims=[32], norm="GN").eval()
    feats = [torch.randn(1, 32, 6, 5), torch.randn(1, 32, 3, 3)]
    logits, deltas, ctrness = head(feats)
    assert [x.shape[1] for x in logits + deltas + ctrness] == [3, 3, 4, 4, 1, 1]
    with torch.no_grad():
        torch.testing.assert_close(ctrness[1], head.ctrness(head.bbox_subnet(feats[1])))
    # prior_prob 0.01 sets the classifier bias; centerness starts at 0
    torch.testing.assert_close(head.cls_score.bias, torch.full((3,), -math.log(99.0)))
    assert not head.ctrness.bias.any()
