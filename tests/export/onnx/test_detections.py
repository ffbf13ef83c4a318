"""``detections.decode_predictions`` + ``fast_rcnn_detections``: box-head post-processing of a whole
batch in the graph, against detectron2's ``FastRCNNOutputLayers.inference`` (``predict_boxes``,
``predict_probs``, ``fast_rcnn_inference``) image by image."""

from typing import List

import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.detections import decode_predictions, fast_rcnn_detections
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.roi_heads.fast_rcnn import FastRCNNOutputLayers
from detectron2_export.structures import Boxes, Instances

from .helpers import OnnxFunction, dynamic

NUM_CLASSES = 3
NEG_INF = float("-inf")


def _predictor(topk: int = 5, agnostic: bool = False, sigmoid: bool = False) -> FastRCNNOutputLayers:
    return FastRCNNOutputLayers(
        ShapeSpec(channels=4), box2box_transform=Box2BoxTransform((10.0, 10.0, 5.0, 5.0)), num_classes=NUM_CLASSES,
        test_score_thresh=0.05, test_nms_thresh=0.5, test_topk_per_image=topk, cls_agnostic_bbox_reg=agnostic,
        use_sigmoid_ce=sigmoid,
    ).eval()


def _case(counts: List[int], p: int, agnostic: bool, seed: int):
    """(N, P) proposals of which the first counts[i] of image i are real, logits and deltas of
    every row (rows of padding proposals hold garbage); real row 1 has an infinite logit and real
    row 2 a NaN delta of class 0 only (detectron2 drops such a row for all classes)."""
    g = torch.Generator().manual_seed(seed)
    n = len(counts)
    image_sizes = torch.randint(40, 80, (n, 2), generator=g)
    xy = torch.rand(n, p, 2, generator=g) * 50
    proposals = torch.cat([xy, xy + torch.rand(n, p, 2, generator=g) * 30 + 2], dim=-1)
    valid = torch.arange(p)[None, :] < torch.tensor(counts)[:, None]
    logits = torch.randn(n * p, NUM_CLASSES + 1, generator=g) * 2
    deltas = torch.randn(n * p, 4 if agnostic else 4 * NUM_CLASSES, generator=g) * 0.3
    if counts[0] > 2:
        logits[1, 0] = float("inf")
        deltas[2, 0] = float("nan")
    return (logits, deltas), proposals, valid, image_sizes


def _detections(predictor, predictions, proposals, valid, image_sizes):
    """The lowering as the ROI heads call it: decode the regions, then the detections."""
    boxes, probs = decode_predictions(predictor, predictions, proposals.reshape(-1, 4))
    return fast_rcnn_detections(predictor, boxes, probs, valid, image_sizes)


def test_decode_predictions_equals_predict_boxes_and_predict_probs():
    for agnostic, sigmoid in [(False, False), (True, True)]:
        predictor = _predictor(agnostic=agnostic, sigmoid=sigmoid)
        predictions, proposals, _, _ = _case([4, 4], 4, agnostic, seed=7)
        instances = [Instances((80, 80), proposal_boxes=Boxes(p)) for p in proposals]
        boxes, probs = decode_predictions(predictor, predictions, proposals.reshape(-1, 4))
        torch.testing.assert_close(boxes, torch.cat(predictor.predict_boxes(predictions, instances)), rtol=0, atol=0, equal_nan=True)
        torch.testing.assert_close(probs, torch.cat(predictor.predict_probs(predictions, instances)), rtol=0, atol=0, equal_nan=True)


def _reference(predictor, predictions, proposals, valid, image_sizes) -> List[Instances]:
    logits, deltas = predictions
    rows = valid.reshape(-1)
    instances = []
    for i in range(proposals.shape[0]):
        x = Instances((int(image_sizes[i, 0]), int(image_sizes[i, 1])))
        x.proposal_boxes = Boxes(proposals[i][valid[i]])
        instances.append(x)
    results, _ = predictor.inference((logits[rows], deltas[rows]), instances)
    return results


def _assert_matches(predictor, outputs, predictions, proposals, valid, image_sizes, atol: float) -> None:
    """Image by image: the reference's detections first, in its order, then -inf padding."""
    boxes, scores, classes = (torch.as_tensor(x) for x in outputs)
    for i, expected in enumerate(_reference(predictor, predictions, proposals, valid, image_sizes)):
        m = len(expected)
        assert m > 0 or not valid[i].any(), f"image {i}: the case should have detections"
        torch.testing.assert_close(boxes[i, :m], expected.pred_boxes.tensor, rtol=0, atol=atol)
        torch.testing.assert_close(scores[i, :m], expected.scores, rtol=0, atol=1e-6)
        assert classes[i, :m].tolist() == expected.pred_classes.tolist(), f"image {i}"
        assert (scores[i, m:] == NEG_INF).all(), f"image {i}: {scores[i, m:]} after the {m} detections"


@pytest.mark.parametrize(
    "topk, agnostic, sigmoid", [(5, False, False), (-1, False, False), (3, True, False), (100, False, True)],
    ids=["top5", "no-topk", "class-agnostic", "sigmoid"],
)
def test_torch_equals_fast_rcnn_inference(topk, agnostic, sigmoid):
    predictor = _predictor(topk, agnostic, sigmoid)
    predictions, proposals, valid, image_sizes = _case([6, 3, 0], 8, agnostic, seed=topk + 10 * agnostic)
    outputs = _detections(predictor, predictions, proposals, valid, image_sizes)
    expected_k = 8 * NUM_CLASSES if topk < 0 else min(topk, 8 * NUM_CLASSES)
    assert outputs[1].shape == (3, expected_k)
    assert (outputs[1][2] == NEG_INF).all()  # an image without proposals has no detections
    _assert_matches(predictor, outputs, predictions, proposals, valid, image_sizes, atol=0)


class Detections(nn.Module):
    def __init__(self, predictor: FastRCNNOutputLayers) -> None:
        super().__init__()
        self.predictor = predictor

    def forward(self, logits, deltas, proposals, valid, image_sizes):
        return _detections(self.predictor, (logits, deltas), proposals, valid, image_sizes)


@pytest.mark.parametrize("agnostic", [False, True])
def test_onnx_equals_fast_rcnn_inference_on_other_shapes(agnostic):
    predictor = _predictor(4, agnostic)
    (logits, deltas), proposals, valid, image_sizes = _case([4, 5], 6, agnostic, seed=0)
    names = ["logits", "deltas", "proposals", "valid", "image_sizes", "boxes", "scores", "classes"]
    fn = OnnxFunction(
        Detections(predictor), [logits, deltas, proposals, valid, image_sizes], names[:5], names[5:],
        dynamic(names, [0], [0], [0, 1], [0, 1], [0], [0, 1], [0, 1], [0, 1]),
    )
    for counts, p in [([9, 2, 7], 10), ([2], 3), ([3, 4], 4)]:
        predictions, proposals, valid, image_sizes = _case(counts, p, agnostic, seed=p)
        outputs = fn(*predictions, proposals, valid, image_sizes)
        _assert_matches(predictor, outputs, predictions, proposals, valid, image_sizes, atol=1e-4)
