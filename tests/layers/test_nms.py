"""batched_nms / nms on hand-made boxes; rotated NMS against hand cases and the slow reference."""

import pytest
import torch

from detectron2_export.layers import batched_nms, batched_nms_rotated, nms, nms_rotated, pairwise_iou_rotated
from detectron2_export.layers.nms import _blocked_nms_rotated

from .rotated_nms_reference import clustered_rotated_boxes, greedy_nms_rotated, per_class_nms_rotated


def test_batched_nms_per_class():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [20, 20, 30, 30]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # IoU(box0, box1) = 81 / 119 = 0.68
    same_class = batched_nms(boxes, scores, torch.tensor([0, 0, 0, 0]), 0.5)
    assert same_class.tolist() == [0, 3]
    split = batched_nms(boxes, scores, torch.tensor([0, 0, 1, 1]), 0.5)
    assert split.tolist() == [0, 2, 3]  # box 2 duplicates box 0 but is another class
    assert batched_nms(boxes, scores, torch.zeros(4, dtype=torch.long), 0.7).tolist() == [0, 1, 3]
    # half-precision boxes are handled in float32
    assert batched_nms(boxes.half(), scores, torch.zeros(4, dtype=torch.long), 0.5).tolist() == [0, 3]


def test_nms():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11]])
    assert nms(boxes, torch.tensor([0.5, 0.9]), 0.5).tolist() == [1]


def test_nms_rotated_upright_matches_nms():
    g = torch.Generator().manual_seed(0)
    xywh = torch.cat([torch.rand(20, 2, generator=g) * 30, torch.rand(20, 2, generator=g) * 15 + 1], dim=1)
    scores = torch.rand(20, generator=g)
    xyxy = torch.cat([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], dim=1)
    rotated = torch.cat([xywh[:, :2] + xywh[:, 2:] / 2, xywh[:, 2:], torch.zeros(20, 1)], dim=1)
    for thresh in (0.1, 0.3, 0.7):
        assert nms_rotated(rotated, scores, thresh).tolist() == nms(xyxy, scores, thresh).tolist()
    idxs = torch.randint(0, 3, (20,), generator=g)
    expected = batched_nms(xyxy, scores, idxs, 0.3).tolist()
    assert batched_nms_rotated(rotated, scores, idxs, 0.3).tolist() == expected


def test_nms_rotated_hand():
    # same square at 0 and 45 degrees overlap with IoU 0.707
    boxes = torch.tensor([[5.0, 5, 10, 10, 0], [5, 5, 10, 10, 45], [30, 30, 4, 4, 10]])
    scores = torch.tensor([0.5, 0.9, 0.1])
    assert nms_rotated(boxes, scores, 0.7).tolist() == [1, 2]
    assert nms_rotated(boxes, scores, 0.75).tolist() == [1, 0, 2]
    assert batched_nms_rotated(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [1, 0, 2]
    assert batched_nms_rotated(boxes[:0], scores[:0], torch.zeros(0), 0.5).shape == (0,)


# --- rotated NMS: the fast blocked greedy against the slow reference ------------------------------

@pytest.mark.parametrize("jitter", [0.5, 3.0, 10.0])
@pytest.mark.parametrize("iou_threshold", [0.0, 0.3, 0.7, 0.95])
def test_nms_rotated_matches_greedy_reference(jitter, iou_threshold):
    boxes = clustered_rotated_boxes(150, 8, jitter, torch.Generator().manual_seed(int(jitter * 10)))
    scores = torch.rand(150, generator=torch.Generator().manual_seed(1))
    expected = greedy_nms_rotated(boxes, scores, iou_threshold)
    assert nms_rotated(boxes, scores, iou_threshold).tolist() == expected
    # block edges fall between any two boxes: one box per block, an odd size, everything in one
    for block_size in (1, 7, 1000):
        assert _blocked_nms_rotated(boxes, scores, iou_threshold, block_size).tolist() == expected


def test_batched_nms_rotated_matches_per_class_reference():
    boxes = clustered_rotated_boxes(200, 10, 3.0, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(2)
    scores, idxs = torch.rand(200, generator=g), torch.randint(0, 4, (200,), generator=g)
    # far from the origin too: the per-class offsets then reach ~1e4
    for shift in (0.0, -5000.0):
        moved = boxes + torch.tensor([shift, shift, 0, 0, 0])
        got = batched_nms_rotated(moved, scores, idxs, 0.5).tolist()
        assert got == per_class_nms_rotated(moved, scores, idxs, 0.5)


def test_nms_rotated_duplicates_and_degenerate_boxes():
    boxes = torch.tensor(
        [[10.0, 10, 8, 4, 30], [10, 10, 8, 4, 30], [10, 10, 8, 4, 30], [10, 10, 0, 4, 30], [40, 40, 2, 2, 0]]
    )
    scores = torch.tensor([0.2, 0.9, 0.5, 0.8, 0.1])
    # identical boxes have IoU 1 (> 0.99): only the best one stays; the empty box overlaps nothing
    assert nms_rotated(boxes, scores, 0.99).tolist() == [1, 3, 4]
    assert nms_rotated(boxes, scores, 1.0).tolist() == [1, 3, 2, 0, 4]
    assert nms_rotated(boxes[:0], scores[:0], 0.5).tolist() == []


def test_rotated_nms_and_iou_are_scriptable():
    boxes = clustered_rotated_boxes(60, 4, 3.0, torch.Generator().manual_seed(7))
    g = torch.Generator().manual_seed(3)
    scores, idxs = torch.rand(60, generator=g), torch.randint(0, 3, (60,), generator=g)
    scripted_nms = torch.jit.script(nms_rotated)
    scripted_batched = torch.jit.script(batched_nms_rotated)
    scripted_iou = torch.jit.script(pairwise_iou_rotated)
    assert scripted_nms(boxes, scores, 0.3).tolist() == greedy_nms_rotated(boxes, scores, 0.3)
    assert scripted_batched(boxes, scores, idxs, 0.3).tolist() == per_class_nms_rotated(boxes, scores, idxs, 0.3)
    torch.testing.assert_close(scripted_iou(boxes, boxes[:9]), pairwise_iou_rotated(boxes, boxes[:9]), rtol=0, atol=0)
    # the hand case of test_nms_rotated_hand, through the scripted function
    hand = torch.tensor([[5.0, 5, 10, 10, 0], [5, 5, 10, 10, 45], [30, 30, 4, 4, 10]])
    assert scripted_nms(hand, torch.tensor([0.5, 0.9, 0.1]), 0.7).tolist() == [1, 2]
