"""``postprocess.front_first`` and ``rescale_detections``: detector_postprocess of a whole batch in the
graph (scale, clip, drop empty boxes, compact), against detectron2's ``detector_postprocess`` image by
image and a stable argsort; in torch and exported."""

from typing import List

import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.postprocess import front_first, output_scales, rescale_detections
from detectron2_export.modeling.postprocessing import detector_postprocess
from detectron2_export.structures import Boxes, Instances

from .helpers import Function, OnnxFunction, dynamic, op_types

NEG_INF = float("-inf")


def _stable_partition(valid: torch.Tensor) -> torch.Tensor:
    """Reference: True entries first then False ones, each in their original order."""
    return torch.argsort((~valid).to(torch.int8), dim=1, stable=True)


def _valid(n: int, d: int, seed: int) -> torch.Tensor:
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed)) < 0.5


def test_front_first_hand_case():
    valid = torch.tensor([[True, False, True, False, True], [False, False, False, False, False], [True] * 5])
    order = front_first(valid).tolist()
    assert order[0][:3] == [0, 2, 4] and sorted(order[0][3:]) == [1, 3]
    assert sorted(order[1]) == [0, 1, 2, 3, 4]
    assert order[2] == [0, 1, 2, 3, 4]


def test_front_first_puts_the_true_entries_first_in_order():
    valid = _valid(4, 300, seed=0)
    order, expected = front_first(valid), _stable_partition(valid)
    assert torch.equal(order.sort(dim=1).values, torch.arange(300).expand(4, 300))  # a permutation
    for i, count in enumerate(valid.sum(dim=1).tolist()):
        assert torch.equal(order[i, :count], expected[i, :count])


def test_front_first_is_a_stable_partition():
    """The False entries keep their order too (the docstring's "stable partition"): all of them
    have the key 0, and TopK orders ties as it likes (torch's CPU TopK does not keep them in order),
    so the padding of torch and onnxruntime outputs can differ."""
    valid = _valid(4, 300, seed=0)
    assert torch.equal(front_first(valid), _stable_partition(valid))


def test_front_first_onnx_puts_the_true_entries_first_in_order():
    fn = OnnxFunction(Function(front_first), [_valid(2, 6, seed=1)], ["valid"], ["order"], dynamic(["valid", "order"], [0, 1], [0, 1]))
    assert op_types(fn.model).count("TopK") == 1
    for n, d in [(3, 50), (1, 1), (5, 7)]:
        valid = _valid(n, d, seed=d)
        order = torch.from_numpy(fn(valid)[0])
        expected = _stable_partition(valid)
        assert torch.equal(order.sort(dim=1).values, torch.arange(d).expand(n, d))
        for i, count in enumerate(valid.sum(dim=1).tolist()):
            assert torch.equal(order[i, :count], expected[i, :count])


def _detections(image_sizes: List[List[int]], d: int, seed: int):
    """(N, D, 4) boxes in network-input pixels (some beyond the image, some becoming empty once
    clipped), (N, D) scores by decreasing value with -inf padding, (N, D) classes."""
    g = torch.Generator().manual_seed(seed)
    n = len(image_sizes)
    wh = torch.tensor(image_sizes, dtype=torch.float32).flip(1)[:, None, :]
    xy = (torch.rand(n, d, 2, generator=g) * 1.3 - 0.15) * wh
    boxes = torch.cat([xy, xy + torch.rand(n, d, 2, generator=g) * 0.5 * wh + 0.1], dim=-1)
    boxes[:, 0] = torch.cat([wh[:, 0] + 1, wh[:, 0] + 5], dim=-1)  # entirely beyond the image: empty
    scores = torch.sort(torch.rand(n, d, generator=g), dim=1, descending=True).values
    counts = torch.randint(1, d + 1, (n,), generator=g)
    scores[torch.arange(d)[None, :] >= counts[:, None]] = NEG_INF
    return boxes, scores, torch.randint(0, 5, (n, d), generator=g)


def _assert_matches(outputs, boxes, scores, classes, image_sizes, output_sizes) -> None:
    out_boxes, out_scores, count, out_classes = (torch.as_tensor(x) for x in outputs)
    for i, ((h, w), (oh, ow)) in enumerate(zip(image_sizes, output_sizes)):
        real = scores[i] > NEG_INF
        results = Instances((h, w))
        results.pred_boxes = Boxes(boxes[i][real].clone())
        results.scores = scores[i][real]
        results.pred_classes = classes[i][real]
        expected = detector_postprocess(results, oh, ow)
        m = len(expected)
        assert count[i] == m and m < real.sum(), f"image {i}: {count[i]} detections, expected {m}"
        torch.testing.assert_close(out_boxes[i, :m], expected.pred_boxes.tensor, rtol=0, atol=1e-5)
        assert torch.equal(out_scores[i, :m], expected.scores)
        assert torch.equal(out_classes[i, :m], expected.pred_classes)
        assert (out_scores[i, m:] == NEG_INF).all()


CASES = [([[20, 30], [40, 12]], [[40, 15], [20, 24]]), ([[50, 50]], [[50, 50]]), ([[9, 14], [30, 30], [16, 8]], [[27, 7], [10, 90], [16, 8]])]


def test_output_scales_hand_case():
    scales = output_scales(torch.tensor([[20, 30], [40, 12]]), torch.tensor([[40, 15], [20, 24]]))
    assert scales.tolist() == [[0.5, 2.0], [2.0, 0.5]]  # (scale_x, scale_y)


@pytest.mark.parametrize("image_sizes, output_sizes", CASES)
def test_rescale_detections_equals_detector_postprocess(image_sizes, output_sizes):
    boxes, scores, classes = _detections(image_sizes, 8, seed=len(image_sizes))
    b, s, count, extra = rescale_detections(boxes, scores, torch.tensor(image_sizes), torch.tensor(output_sizes), {"pred_classes": classes})
    _assert_matches((b, s, count, extra["pred_classes"]), boxes, scores, classes, image_sizes, output_sizes)


class Rescale(nn.Module):
    def forward(self, boxes, scores, image_sizes, output_sizes, classes):
        b, s, count, extra = rescale_detections(boxes, scores, image_sizes, output_sizes, {"pred_classes": classes})
        return b, s, count, extra["pred_classes"]


def test_rescale_detections_onnx_on_other_shapes():
    names = ["boxes", "scores", "image_sizes", "output_sizes", "classes", "out_boxes", "out_scores", "count", "out_classes"]
    image_sizes, output_sizes = CASES[0]
    fn = OnnxFunction(
        Rescale(), [*_detections(image_sizes, 5, seed=0)[:2], torch.tensor(image_sizes), torch.tensor(output_sizes), _detections(image_sizes, 5, seed=0)[2]],
        names[:5], names[5:], dynamic(names, [0, 1], [0, 1], [0], [0], [0, 1], [0, 1], [0, 1], [0], [0, 1]),
    )
    for d, (image_sizes, output_sizes) in zip([12, 3, 9], CASES):
        boxes, scores, classes = _detections(image_sizes, d, seed=d)
        outputs = fn(boxes, scores, torch.tensor(image_sizes), torch.tensor(output_sizes), classes)
        _assert_matches(outputs, boxes, scores, classes, image_sizes, output_sizes)
