"""keypoint_rcnn_inference and KRCNNConvDeconvUpsampleHead."""

import math
from unittest import mock

import torch
import torch.nn.functional as F

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.roi_heads import keypoint_head
from detectron2_export.modeling.roi_heads.keypoint_head import (
    KRCNNConvDeconvUpsampleHead,
    build_keypoint_head,
    keypoint_rcnn_inference,
)
from detectron2_export.structures import Boxes, Instances


def test_inference_peak_location_and_shapes():
    # 3 instances (2 + 1 images), 3 keypoints, 8x8 heatmaps. Boxes are 8x8 pixels, so no
    # resizing: the argmax cell (row 2, col 5) maps to its centre (5.5, 2.5) plus the box origin.
    logits = torch.zeros(3, 3, 8, 8)
    logits[0, 1, 2, 5] = 4.0
    logits[2, 0, 7, 0] = 2.0
    boxes_a = torch.tensor([[4.0, 6.0, 12.0, 14.0], [0.0, 0.0, 8.0, 8.0]])
    boxes_b = torch.tensor([[10.0, 20.0, 18.0, 28.0]])
    instances = [
        Instances((40, 40), pred_boxes=Boxes(boxes_a)),
        Instances((40, 40), pred_boxes=Boxes(boxes_b)),
    ]
    keypoint_rcnn_inference(logits, instances)

    kp_a, kp_b = instances[0].pred_keypoints, instances[1].pred_keypoints
    assert kp_a.shape == (2, 3, 3) and kp_b.shape == (1, 3, 3)
    torch.testing.assert_close(kp_a[0, 1, :2], torch.tensor([4.0 + 5.5, 6.0 + 2.5]))
    torch.testing.assert_close(kp_b[0, 0, :2], torch.tensor([10.0 + 0.5, 20.0 + 7.5]))
    # the third value is the spatial softmax probability of the peak
    peak = math.exp(4.0) / (math.exp(4.0) + 63)
    torch.testing.assert_close(kp_a[0, 1, 2], torch.tensor(peak))
    torch.testing.assert_close(instances[0].pred_keypoint_heatmaps, logits[:2])
    torch.testing.assert_close(instances[1].pred_keypoint_heatmaps, logits[2:])


def _head(conv_dims=(6, 6)):
    cfg = get_cfg()
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = list(conv_dims)
    cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS = 4
    torch.manual_seed(0)
    return build_keypoint_head(cfg, ShapeSpec(channels=5, height=14, width=14)).eval()


def test_head_layout():
    head = _head()
    assert isinstance(head, KRCNNConvDeconvUpsampleHead)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "conv_fcn1.weight": (6, 5, 3, 3),
        "conv_fcn1.bias": (6,),
        "conv_fcn2.weight": (6, 6, 3, 3),
        "conv_fcn2.bias": (6,),
        "score_lowres.weight": (6, 4, 4, 4),
        "score_lowres.bias": (4,),
    }
    assert head.num_keypoints == 4 and head.up_scale == 2.0


def test_head_layers_match_functional_reference():
    head = _head(conv_dims=(6,))
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 5, 14, 14)
    t = F.relu(F.conv2d(x, head.conv_fcn1.weight, head.conv_fcn1.bias, padding=1))
    t = F.conv_transpose2d(t, head.score_lowres.weight, head.score_lowres.bias, stride=2, padding=1)
    expected = F.interpolate(t, scale_factor=2.0, mode="bilinear", align_corners=False)
    got = head.layers(x)
    assert got.shape == (2, 4, 56, 56)
    torch.testing.assert_close(got, expected)


def test_head_forward_goes_through_the_module_level_function():
    head = _head()
    instances = [Instances((50, 50), pred_boxes=Boxes(torch.tensor([[0.0, 0, 20, 30]])))]
    x = torch.randn(1, 5, 14, 14)
    with mock.patch.object(keypoint_head, "keypoint_rcnn_inference") as patched:
        head(x, instances)
    patched.assert_called_once()
    out = head(x, instances)
    assert out[0].pred_keypoints.shape == (1, 4, 3)
    assert out[0].pred_keypoint_heatmaps.shape == (1, 4, 56, 56)
