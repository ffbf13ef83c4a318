"""mask_rcnn_inference and MaskRCNNConvUpsampleHead."""

from unittest import mock

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.roi_heads import mask_head
from detectron2_export.modeling.roi_heads.mask_head import (
    MaskRCNNConvUpsampleHead,
    build_mask_head,
    mask_rcnn_inference,
)
from detectron2_export.structures import Instances


def _instances(classes_per_image):
    return [Instances((20, 20), pred_classes=torch.tensor(c)) for c in classes_per_image]


def test_inference_picks_the_predicted_class_and_applies_sigmoid():
    logits = torch.randn(3, 4, 2, 2, generator=torch.Generator().manual_seed(0))
    instances = _instances([[2, 0], [3]])
    mask_rcnn_inference(logits, instances)
    a, b = instances[0].pred_masks, instances[1].pred_masks
    assert a.shape == (2, 1, 2, 2) and b.shape == (1, 1, 2, 2)
    torch.testing.assert_close(a[0, 0], 1 / (1 + torch.exp(-logits[0, 2])))
    torch.testing.assert_close(a[1, 0], 1 / (1 + torch.exp(-logits[1, 0])))
    torch.testing.assert_close(b[0, 0], 1 / (1 + torch.exp(-logits[2, 3])))


def test_inference_class_agnostic():
    logits = torch.tensor([[[[0.0, 2.0]]], [[[-2.0, 0.0]]]])  # (2, 1, 1, 2)
    instances = _instances([[5], [1]])
    mask_rcnn_inference(logits, instances)
    s = 1 / (1 + torch.exp(torch.tensor(-2.0)))
    torch.testing.assert_close(instances[0].pred_masks, torch.tensor([[[[0.5, s]]]]))
    torch.testing.assert_close(instances[1].pred_masks, torch.tensor([[[[1 - s, 0.5]]]]))


def test_inference_with_an_empty_image():
    logits = torch.randn(1, 3, 4, 4)
    instances = _instances([[], [1]])
    instances[0].pred_classes = torch.zeros(0, dtype=torch.int64)
    mask_rcnn_inference(logits, instances)
    assert instances[0].pred_masks.shape == (0, 1, 4, 4)
    torch.testing.assert_close(instances[1].pred_masks[0, 0], logits[0, 1].sigmoid())


def _head(num_conv=2, cls_agnostic=False):
    cfg = get_cfg()
    cfg.MODEL.ROI_MASK_HEAD.NUM_CONV = num_conv
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 6
    cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK = cls_agnostic
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    torch.manual_seed(0)
    return build_mask_head(cfg, ShapeSpec(channels=5, height=14, width=14)).eval()


def test_head_layout():
    head = _head(num_conv=2)
    assert isinstance(head, MaskRCNNConvUpsampleHead)
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes == {
        "mask_fcn1.weight": (6, 5, 3, 3),
        "mask_fcn1.bias": (6,),
        "mask_fcn2.weight": (6, 6, 3, 3),
        "mask_fcn2.bias": (6,),
        "deconv.weight": (6, 6, 2, 2),
        "deconv.bias": (6,),
        "predictor.weight": (3, 6, 1, 1),
        "predictor.bias": (3,),
    }
    # C4 style: no conv, the deconv reads the input directly; class-agnostic: one channel
    c4_head = _head(num_conv=0, cls_agnostic=True)
    shapes = {k: tuple(v.shape) for k, v in c4_head.state_dict().items()}
    assert shapes["deconv.weight"] == (5, 6, 2, 2) and shapes["predictor.weight"] == (1, 6, 1, 1)


def test_head_layers_match_functional_reference():
    head = _head(num_conv=1)
    for p in head.parameters():
        torch.nn.init.normal_(p, std=0.2)
    x = torch.randn(2, 5, 14, 14)
    t = F.relu(F.conv2d(x, head.mask_fcn1.weight, head.mask_fcn1.bias, padding=1))
    t = F.relu(F.conv_transpose2d(t, head.deconv.weight, head.deconv.bias, stride=2))
    expected = F.conv2d(t, head.predictor.weight, head.predictor.bias)
    torch.testing.assert_close(head.layers(x), expected)
    assert expected.shape == (2, 3, 28, 28)


def test_head_forward_goes_through_the_module_level_function():
    head = _head()
    instances = _instances([[1, 2]])
    x = torch.randn(2, 5, 14, 14)
    with mock.patch.object(mask_head, "mask_rcnn_inference") as patched:
        out = head(x, instances)
    patched.assert_called_once()
    assert patched.call_args.args[0].shape == (2, 3, 28, 28)
    assert out is instances and not instances[0].has("pred_masks")
    out = head(x, instances)
    assert out[0].pred_masks.shape == (2, 1, 28, 28)


def test_head_refuses_training():
    head = _head().train()
    with pytest.raises(NotImplementedError, match="training=True"):
        head(torch.randn(1, 5, 14, 14), _instances([[0]]))
