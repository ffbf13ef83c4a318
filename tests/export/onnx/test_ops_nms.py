"""``ops.non_max_suppression``: one ONNX NonMaxSuppression node for every image and class, in torch
(torchvision's greedy NMS per image and class) and exported; ``-inf`` scores take no part."""

from typing import List

import numpy as np
import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.ops import non_max_suppression

from .helpers import OnnxFunction, dynamic, op_types

NEG_INF = float("-inf")


class Nms(nn.Module):
    def __init__(self, max_per_class: int, iou_threshold: float) -> None:
        super().__init__()
        self.max_per_class, self.iou_threshold = max_per_class, iou_threshold

    def forward(self, boxes, scores):
        return non_max_suppression(boxes, scores, self.max_per_class, self.iou_threshold)


def _iou(a: List[float], b: List[float]) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _greedy_reference(boxes: torch.Tensor, scores: torch.Tensor, max_per_class: int, iou_threshold: float) -> List[List[int]]:
    """Textbook greedy NMS in python, image by image and class by class: the best remaining box is
    kept, boxes whose IoU with it is above the threshold are dropped; -inf scores never enter."""
    triples = []
    for n in range(scores.shape[0]):
        for c in range(scores.shape[1]):
            remaining = [b for b in np.argsort(-scores[n, c].numpy(), kind="stable") if scores[n, c, b] > NEG_INF]
            kept = []
            while remaining and len(kept) < max_per_class:
                best = remaining.pop(0)
                kept.append(best)
                remaining = [b for b in remaining if _iou(boxes[n, best].tolist(), boxes[n, b].tolist()) <= iou_threshold]
            triples += [[n, c, int(b)] for b in kept]
    return triples


def _random_case(n: int, c: int, b: int, seed: int, masked: float = 0.3):
    """Clustered random boxes (many overlaps), distinct scores, a fraction masked with -inf."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(n, b, 2, generator=g) * 40
    sizes = torch.rand(n, b, 2, generator=g) * 20 + 4
    boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=-1)
    scores = torch.randperm(n * c * b, generator=g).to(torch.float32).reshape(n, c, b) / (n * c * b) - 0.5
    scores[torch.rand(n, c, b, generator=g) < masked] = NEG_INF
    return boxes, scores


def test_hand_case_overlap_suppressed_per_class_and_minus_inf_skipped():
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]]])
    # class 0: box 1 (IoU 0.81 with box 0) is suppressed; class 1: box 0 is masked, so box 1 stays,
    # and a very negative but finite score (a logit) still takes part.
    scores = torch.tensor([[[0.9, 0.8, 0.7], [NEG_INF, 0.6, -1e30]]])
    kept = non_max_suppression(boxes, scores, 10, 0.5)
    assert kept.dtype == torch.int64
    assert kept.tolist() == [[0, 0, 0], [0, 0, 2], [0, 1, 1], [0, 1, 2]]
    assert non_max_suppression(boxes, torch.full_like(scores, NEG_INF), 10, 0.5).shape == (0, 3)


@pytest.mark.parametrize("seed", [0, 1])
def test_torch_equals_the_greedy_reference(seed):
    boxes, scores = _random_case(3, 4, 12, seed)
    assert non_max_suppression(boxes, scores, 3, 0.4).tolist() == _greedy_reference(boxes, scores, 3, 0.4)
    assert non_max_suppression(boxes, scores, 100, 0.6).tolist() == _greedy_reference(boxes, scores, 100, 0.6)


def _at_threshold_case():
    # IoU exactly 0.5 in binary floating point: intersection 2, union 4.
    boxes = torch.tensor([[[0.0, 0.0, 3.0, 1.0], [1.0, 0.0, 4.0, 1.0]]])
    scores = torch.tensor([[[0.9, 0.8]]])
    assert _iou(boxes[0, 0].tolist(), boxes[0, 1].tolist()) == 0.5
    return boxes, scores


def test_iou_exactly_at_the_threshold_is_not_suppressed():
    """A box is suppressed only by an IoU strictly above the threshold (torchvision, detectron2 and
    onnxruntime alike): at IoU == iou_threshold both boxes stay."""
    boxes, scores = _at_threshold_case()
    assert non_max_suppression(boxes, scores, 10, 0.5).tolist() == [[0, 0, 0], [0, 0, 1]]
    assert non_max_suppression(boxes, scores, 10, 0.49).tolist() == [[0, 0, 0]]
    for threshold, expected in [(0.5, [[0, 0, 0], [0, 0, 1]]), (0.49, [[0, 0, 0]])]:
        fn = OnnxFunction(Nms(10, threshold), [boxes, scores], ["boxes", "scores"], ["kept"], dynamic(["kept"], [0]))
        assert fn(boxes, scores)[0].tolist() == expected


@pytest.fixture(scope="module")
def exported():
    boxes, scores = _random_case(2, 3, 6, seed=5)
    names = ["boxes", "scores", "kept"]
    return OnnxFunction(Nms(4, 0.45), [boxes, scores], names[:2], names[2:], dynamic(names, [0, 1], [0, 1, 2], [0]))


def test_onnx_graph_is_one_non_max_suppression(exported):
    types = op_types(exported.model)
    assert types.count("NonMaxSuppression") == 1


@pytest.mark.parametrize("shape", [(3, 2, 9), (1, 5, 20), (4, 1, 3)])
def test_onnx_equals_torch_on_other_shapes(exported, shape):
    boxes, scores = _random_case(*shape, seed=sum(shape))
    got = exported(boxes, scores)[0]
    expected = non_max_suppression(boxes, scores, 4, 0.45)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected.numpy())
    assert got.tolist() == _greedy_reference(boxes, scores, 4, 0.45)


def test_onnx_all_masked_gives_no_triples(exported):
    boxes, scores = _random_case(2, 3, 5, seed=9)
    got = exported(boxes, torch.full_like(scores, NEG_INF))[0]
    assert got.shape == (0, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_runs_on_the_device_of_its_inputs():
    """A model on the GPU is traced on the GPU: the eager forward must keep its tensors there."""
    boxes, scores = _random_case(2, 3, 8, seed=4)
    kept = non_max_suppression(boxes.cuda(), scores.cuda(), 3, 0.5)
    assert kept.device.type == "cuda"
    assert kept.cpu().tolist() == _greedy_reference(boxes, scores, 3, 0.5)
    assert non_max_suppression(boxes.cuda(), torch.full_like(scores, NEG_INF).cuda(), 3, 0.5).device.type == "cuda"
