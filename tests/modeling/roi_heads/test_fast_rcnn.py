"""fast_rcnn_inference(_single_image) on hand cases, and FastRCNNOutputLayers' decoding."""

import math

import pytest
import torch

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.roi_heads.fast_rcnn import (
    FastRCNNOutputLayers,
    fast_rcnn_inference,
    fast_rcnn_inference_single_image,
)
from detectron2_export.structures import Boxes, Instances

IMAGE = (50, 40)  # (h, w)

# 3 regions x 2 classes; score columns (class 0, class 1, background)
SCORES = torch.tensor(
    [
        [0.6, 0.25, 0.9],  # class 1 exactly at the threshold: not kept; background never kept
        [0.5, 0.4, 0.1],
        [0.35, 0.45, 0.2],
    ]
)
BOXES = torch.tensor(
    [
        [0, 0, 10, 10, 0, 0, 5, 5],
        [1, 1, 11, 11, 20, 20, 30, 30],  # class 0: IoU 0.68 with region 0 -> suppressed
        [30, 30, 60, 45, 21, 21, 31, 31],  # class 0 clipped to x2=40; class 1 suppresses region 1
    ],
    dtype=torch.float32,
)


def _infer(boxes=BOXES, scores=SCORES, topk=100):
    return fast_rcnn_inference_single_image(boxes, scores, IMAGE, 0.25, 0.5, topk)


def test_hand_case_threshold_classwise_nms_sorted():
    res, kept = _infer()
    expected_boxes = torch.tensor([[0.0, 0, 10, 10], [21, 21, 31, 31], [30, 30, 40, 45]])
    torch.testing.assert_close(res.pred_boxes.tensor, expected_boxes)
    torch.testing.assert_close(res.scores, torch.tensor([0.6, 0.45, 0.35]))
    assert res.pred_classes.tolist() == [0, 1, 0]
    assert kept.tolist() == [0, 2, 2]
    assert res.image_size == IMAGE


def test_topk_per_image():
    res, kept = _infer(topk=2)
    assert res.scores.tolist() == pytest.approx([0.6, 0.45])
    assert kept.tolist() == [0, 2]
    res, _ = _infer(topk=-1)  # negative: keep all
    assert len(res) == 3


def test_non_finite_regions_are_dropped():
    boxes = torch.cat([BOXES, torch.tensor([[0, 0, math.nan, 5, 0, 0, 5, 5.0]])])
    scores = torch.cat([SCORES, torch.tensor([[0.99, 0.99, 0.0]])])
    res, kept = _infer(boxes, scores)
    assert res.scores.tolist() == pytest.approx([0.6, 0.45, 0.35])
    assert kept.tolist() == [0, 2, 2]


def test_class_agnostic_boxes():
    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11]], dtype=torch.float32)
    scores = torch.tensor([[0.3, 0.7, 0.0], [0.9, 0.2, 0.0]])
    res, kept = fast_rcnn_inference_single_image(boxes, scores, IMAGE, 0.25, 0.5, 100)
    # one box per region shared by both classes; the NMS is still per class
    assert res.scores.tolist() == pytest.approx([0.9, 0.7])
    assert res.pred_classes.tolist() == [0, 1]
    assert kept.tolist() == [1, 0]


def test_batch_wrapper():
    results, kept = fast_rcnn_inference(
        [BOXES, BOXES[:1]], [SCORES, SCORES[:1]], [IMAGE, (5, 5)], 0.25, 0.5, 100
    )
    assert [len(r) for r in results] == [3, 1]
    torch.testing.assert_close(results[1].pred_boxes.tensor, torch.tensor([[0.0, 0, 5, 5]]))
    assert kept[1].tolist() == [0]


def _predictor(**kwargs):
    torch.manual_seed(0)
    return FastRCNNOutputLayers(
        ShapeSpec(channels=4, height=2, width=2),
        box2box_transform=Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0)),
        num_classes=3,
        **kwargs,
    )


def _proposals():
    boxes_a = Boxes(torch.tensor([[0.0, 0, 10, 10], [5, 5, 25, 15]]))
    a = Instances((40, 40), proposal_boxes=boxes_a)
    b = Instances((30, 30), proposal_boxes=Boxes(torch.tensor([[2.0, 3, 12, 9]])))
    return [a, b]


def test_layers_shapes_and_forward():
    pred = _predictor()
    shapes = {k: tuple(v.shape) for k, v in pred.state_dict().items()}
    assert shapes == {
        "cls_score.weight": (4, 16),
        "cls_score.bias": (4,),
        "bbox_pred.weight": (12, 16),
        "bbox_pred.bias": (12,),
    }
    x = torch.randn(3, 4, 2, 2)
    scores, deltas = pred(x)
    expected_scores = x.flatten(1) @ pred.cls_score.weight.T + pred.cls_score.bias
    torch.testing.assert_close(scores, expected_scores)
    assert deltas.shape == (3, 12)
    agnostic = _predictor(cls_agnostic_bbox_reg=True)
    assert agnostic.bbox_pred.weight.shape == (4, 16)


def test_predict_boxes_and_probs():
    pred = _predictor()
    proposals = _proposals()
    logits = torch.tensor([[1.0, 2.0, 0.0, 0.5], [0.0, 0.0, 3.0, 0.0], [2.0, 1.0, 1.0, 1.0]])
    deltas = torch.zeros(3, 12)
    deltas[1, 4:8] = torch.tensor([1.0, 0.0, 0.0, 5.0 * math.log(2.0)])  # class 1 of region 1
    boxes = pred.predict_boxes((logits, deltas), proposals)
    probs = pred.predict_probs((logits, deltas), proposals)
    assert [b.shape for b in boxes] == [(2, 12), (1, 12)]
    # zero deltas give the proposal back for every class
    torch.testing.assert_close(boxes[0][0], torch.tensor([0.0, 0, 10, 10]).repeat(3))
    # dx=1 with weight 10 -> shift by 0.1*w=2; dh=5*log2 with weight 5 -> height x2 about the centre
    torch.testing.assert_close(boxes[0][1, 4:8], torch.tensor([7.0, 0, 27, 20]))
    torch.testing.assert_close(torch.cat(probs), torch.softmax(logits, dim=1))
    assert [p.shape for p in probs] == [(2, 4), (1, 4)]
    sigmoid = _predictor(use_sigmoid_ce=True)
    sigmoid_probs = sigmoid.predict_probs((logits, deltas), proposals)
    torch.testing.assert_close(torch.cat(sigmoid_probs), logits.sigmoid())


def test_inference_end_to_end():
    pred = _predictor(test_score_thresh=0.5, test_nms_thresh=0.5, test_topk_per_image=10)
    proposals = _proposals()
    # region scores: class 2 wins in region 0, background wins in region 1, class 0 in image b
    logits = torch.tensor([[0.0, 0.0, 5.0, 0.0], [0.0, 0.0, 0.0, 5.0], [5.0, 0.0, 0.0, 0.0]])
    results, kept = pred.inference((logits, torch.zeros(3, 12)), proposals)
    p = math.exp(5.0) / (math.exp(5.0) + 3)
    assert [r.pred_classes.tolist() for r in results] == [[2], [0]]
    assert [k.tolist() for k in kept] == [[0], [0]]
    torch.testing.assert_close(results[0].scores, torch.tensor([p]))
    torch.testing.assert_close(results[1].pred_boxes.tensor, torch.tensor([[2.0, 3, 12, 9]]))
    assert [r.image_size for r in results] == [(40, 40), (30, 30)]


def test_from_config():
    cfg = get_cfg()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 5
    cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = True
    pred = FastRCNNOutputLayers(cfg, ShapeSpec(channels=7))
    assert pred.cls_score.out_features == 6 and pred.bbox_pred.out_features == 4
    assert pred.test_score_thresh == 0.05 and pred.test_nms_thresh == 0.5
    assert pred.test_topk_per_image == 100
    assert pred.box2box_transform.weights == (10.0, 10.0, 5.0, 5.0)
    assert pred.use_sigmoid_ce is False
