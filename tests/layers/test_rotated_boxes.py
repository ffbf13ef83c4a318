"""pairwise_iou_rotated: hand cases, upright agreement, and polygon clipping as a reference."""

import math

import torch

from detectron2_export.layers import pairwise_iou_rotated
from detectron2_export.structures import Boxes, BoxMode, RotatedBoxes, pairwise_iou
from detectron2_export.structures import pairwise_iou_rotated as iou_s

from .rotated_nms_reference import dense_pairwise_iou_rotated


def test_hand_cases():
    b = torch.tensor(
        [
            [5.0, 5, 10, 10, 0],
            [10, 10, 10, 10, 0],  # quarter overlap with box 0: 25 / 175
            [5, 5, 10, 10, 45],  # same square turned 45 degrees: octagon, IoU = sqrt(2) / 2
            [5, 5, 4, 2, 90],  # a 2x4 upright box inside box 0
            [50, 50, 1, 1, 30],  # far away
            [5, 5, 0, 3, 0],  # empty
        ]
    )
    iou = pairwise_iou_rotated(b, b)
    assert iou.dtype == torch.float32 and iou.shape == (6, 6)
    torch.testing.assert_close(torch.diagonal(iou), torch.tensor([1.0, 1, 1, 1, 1, 0]))
    torch.testing.assert_close(iou[0, 1], torch.tensor(25 / 175))
    torch.testing.assert_close(iou[0, 2], torch.tensor(math.sqrt(2) / 2))
    torch.testing.assert_close(iou[1, 2], torch.tensor(25 / 175))  # quarter of the diamond
    torch.testing.assert_close(iou[0, 3], torch.tensor(8 / 100))
    torch.testing.assert_close(iou[1, 3], torch.tensor(2 / 106))
    assert iou[0, 4] == 0 and (iou[5] == 0).all()
    torch.testing.assert_close(iou, iou.T)
    assert pairwise_iou_rotated(b[:0], b).shape == (0, 6)


def test_upright_boxes_match_pairwise_iou():
    g = torch.Generator().manual_seed(0)
    xywh = torch.cat([torch.rand(6, 2, generator=g) * 20, torch.rand(6, 2, generator=g) * 10 + 1], dim=1)
    rotated = RotatedBoxes(BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS))
    upright = Boxes(BoxMode.convert(xywh, BoxMode.XYWH_ABS, BoxMode.XYXY_ABS))
    torch.testing.assert_close(iou_s(rotated, rotated), pairwise_iou(upright, upright), rtol=1e-5, atol=1e-6)


def _clip(subject, edge_a, edge_b):
    """One Sutherland-Hodgman step: keep the part of polygon ``subject`` left of edge a->b."""

    def side(p):
        return (edge_b[0] - edge_a[0]) * (p[1] - edge_a[1]) - (edge_b[1] - edge_a[1]) * (p[0] - edge_a[0])

    out = []
    for i, p in enumerate(subject):
        q = subject[(i + 1) % len(subject)]
        sp, sq = side(p), side(q)
        if sp >= 0:
            out.append(p)
        if (sp >= 0) != (sq >= 0):
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def _polygon(box):
    cx, cy, w, h, a = box
    t = math.radians(a)
    pts = []
    for dx, dy in ((-w / 2, -h / 2), (w / 2, -h / 2), (w / 2, h / 2), (-w / 2, h / 2)):
        pts.append((cx + dx * math.cos(t) + dy * math.sin(t), cy - dx * math.sin(t) + dy * math.cos(t)))
    return pts


def _area(poly):
    return abs(sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1]))) / 2


def _reference_iou(b1, b2):
    clip = _polygon(b2)
    if _area(clip) == 0:
        return 0.0
    if sum((q[0] - p[0]) * (q[1] + p[1]) for p, q in zip(clip, clip[1:] + clip[:1])) > 0:
        clip = clip[::-1]  # make the clip polygon counter-clockwise in the math frame
    poly = _polygon(b1)
    for i in range(4):
        if not poly:
            break
        poly = _clip(poly, clip[i], clip[(i + 1) % 4])
    inter = _area(poly) if len(poly) >= 3 else 0.0
    return inter / (b1[2] * b1[3] + b2[2] * b2[3] - inter)


def test_random_boxes_match_polygon_clipping():
    g = torch.Generator().manual_seed(3)
    n = 12
    boxes = torch.cat(
        [
            torch.rand(n, 2, generator=g) * 10,
            torch.rand(n, 2, generator=g) * 8 + 0.5,
            torch.rand(n, 1, generator=g) * 360 - 180,
        ],
        dim=1,
    )
    iou = pairwise_iou_rotated(boxes, boxes)
    for i, b1 in enumerate(boxes.tolist()):
        for j, b2 in enumerate(boxes.tolist()):
            assert abs(iou[i, j].item() - _reference_iou(b1, b2)) < 1e-5, (i, j)


def test_pairwise_iou_equals_dense_reference():
    """Only pairs with overlapping hulls get an area; the values are the previous implementation's
    (intersection polygons sorted by angle, for every pair)."""
    g = torch.Generator().manual_seed(4)
    n = 80
    boxes = torch.cat(
        [
            torch.rand(n, 2, generator=g) * 200,
            torch.rand(n, 2, generator=g) * 40,  # some nearly empty boxes
            torch.rand(n, 1, generator=g) * 360 - 180,
        ],
        dim=1,
    )
    boxes[0, 2] = 0.0
    boxes[1] = boxes[2] + torch.tensor([boxes[2, 2].item(), 0, 0, 0, 0])  # edge to edge: touching
    for b1, b2 in ((boxes, boxes), (boxes[:7], boxes), (boxes.double(), boxes[30:].double())):
        iou = pairwise_iou_rotated(b1, b2)
        assert iou.dtype == b1.dtype
        # the polygon of the reference and the clipped boundary here agree to float64 rounding
        torch.testing.assert_close(iou, dense_pairwise_iou_rotated(b1, b2), rtol=0, atol=1e-6)
    assert (pairwise_iou_rotated(boxes, boxes) > 0).sum() < n * n / 4  # the hull test had work to do


def test_shared_edges_are_counted_once():
    """Edges on edges (the same box twice, a half box, boxes side by side, a box turned by 180
    degrees, whose corners come in another order) make the clipped boundaries coincide."""
    b = torch.tensor(
        [
            [5.0, 5, 10, 10, 0],
            [2.5, 5, 5, 10, 0],  # the left half of box 0: 3 shared sides
            [15, 5, 10, 10, 0],  # right of box 0, sharing the side x = 10 (opposite directions)
            [5, 5, 10, 10, 180],  # box 0 again
            [5, 5, 10, 10, 90],  # box 0 again
            [5, 2.5, 10, 5, 0],  # the top half of box 0
        ],
        dtype=torch.float64,
    )
    iou = pairwise_iou_rotated(b, b)
    expected = torch.tensor(
        [
            [1, 0.5, 0, 1, 1, 0.5],
            [0.5, 1, 0, 0.5, 0.5, 25 / 75],  # left and top halves: the top-left quarter, 25 of 50 + 50 - 25
            [0, 0, 1, 0, 0, 0],
            [1, 0.5, 0, 1, 1, 0.5],
            [1, 0.5, 0, 1, 1, 0.5],
            [0.5, 25 / 75, 0, 0.5, 0.5, 1],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(iou, expected, rtol=0, atol=1e-12)
