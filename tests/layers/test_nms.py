"""batched_nms / nms on hand-made boxes."""

import torch

from detectron2_export.layers import batched_nms, batched_nms_rotated, nms, nms_rotated


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
