"""Slow, obviously-correct rotated IoU and NMS: the project's previous implementation, kept as the
reference of the fast one (every pair's intersection polygon built from its candidate vertices,
sorted by angle; then the plain greedy loop). And proposal-like boxes to run both on."""

from __future__ import annotations

import math

import torch


def _corners(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 5) (cx, cy, w, h, angle_deg) -> (N, 4, 2) corners in order around the box."""
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = theta.cos(), theta.sin()
    # same convention as BoxMode / RotatedBoxes: counter-clockwise in image coordinates (y down)
    dx = torch.stack([-w, w, w, -w], dim=1) / 2
    dy = torch.stack([-h, -h, h, h], dim=1) / 2
    x = cx[:, None] + dx * cos[:, None] + dy * sin[:, None]
    y = cy[:, None] - dx * sin[:, None] + dy * cos[:, None]
    return torch.stack([x, y], dim=2)


def _inside(points: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """points (P, K, 2) against their boxes (P, 5): (P, K) bool, borders included."""
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = theta.cos()[:, None], theta.sin()[:, None]
    px = points[..., 0] - boxes[:, 0, None]
    py = points[..., 1] - boxes[:, 1, None]
    # coordinates along the box's own axes (inverse of _corners' rotation)
    u = px * cos - py * sin
    v = px * sin + py * cos
    return (u.abs() <= boxes[:, 2, None] / 2 + eps) & (v.abs() <= boxes[:, 3, None] / 2 + eps)


def _cross(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """z of the cross product of 2-d vectors along the last dimension."""
    return p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]


def _edge_crossings(c1: torch.Tensor, c2: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Crossing points of the 4 edges of c1 with the 4 edges of c2 (P, 4, 2): (P, 16, 2), valid."""
    a = c1[:, :, None, :]
    b = c1.roll(-1, dims=1)[:, :, None, :]
    c = c2[:, None, :, :]
    d = c2.roll(-1, dims=1)[:, None, :, :]
    ab, cd, ac = b - a, d - c, c - a
    denom = _cross(ab, cd)
    parallel = denom.abs() < 1e-12
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = _cross(ac, cd) / safe
    s = _cross(ac, ab) / safe
    valid = ~parallel & (t >= 0) & (t <= 1) & (s >= 0) & (s <= 1)
    points = a + t[..., None] * ab
    return points.reshape(-1, 16, 2), valid.reshape(-1, 16)


def _intersection_area(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection areas of matched pairs boxes1[i], boxes2[i] (P, 5) -> (P,)."""
    # shift both boxes so the pair's midpoint is at the origin: better precision far from (0, 0)
    center = (boxes1[:, :2] + boxes2[:, :2]) / 2
    boxes1 = torch.cat([boxes1[:, :2] - center, boxes1[:, 2:]], dim=1)
    boxes2 = torch.cat([boxes2[:, :2] - center, boxes2[:, 2:]], dim=1)
    c1, c2 = _corners(boxes1), _corners(boxes2)
    crossings, crossing_valid = _edge_crossings(c1, c2)
    points = torch.cat([c1, c2, crossings], dim=1)  # (P, 24, 2)
    valid = torch.cat([_inside(c1, boxes2), _inside(c2, boxes1), crossing_valid], dim=1)

    n_valid = valid.sum(dim=1)
    mean = (points * valid[..., None]).sum(dim=1) / n_valid.clamp(min=1)[:, None]
    rel = points - mean[:, None, :]
    angle = torch.atan2(rel[..., 1], rel[..., 0])
    angle = torch.where(valid, angle, torch.full_like(angle, 10.0))  # invalid points sort last
    order = angle.argsort(dim=1)
    rel = rel.gather(1, order[..., None].expand_as(rel))
    valid = valid.gather(1, order)
    # invalid slots repeat the first vertex, so they add nothing to the shoelace sum
    rel = torch.where(valid[..., None], rel, rel[:, :1, :])
    nxt = rel.roll(-1, dims=1)
    area = (rel[..., 0] * nxt[..., 1] - rel[..., 1] * nxt[..., 0]).sum(dim=1).abs() / 2
    return torch.where(n_valid >= 3, area, torch.zeros_like(area))


def dense_pairwise_iou_rotated(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU with the polygon of every pair computed; boxes of area < 1e-14 give 0."""
    b1, b2 = boxes1.double(), boxes2.double()
    area1, area2 = b1[:, 2] * b1[:, 3], b2[:, 2] * b2[:, 3]
    rows = []
    for row, area in zip(b1, area1):  # one row at a time bounds the memory of the 24 points per pair
        inter = _intersection_area(row.expand_as(b2), b2)
        union = area + area2 - inter
        degenerate = (area < 1e-14) | (area2 < 1e-14)
        rows.append(torch.where(degenerate, torch.zeros_like(inter), inter / union.clamp(min=1e-14)))
    if not rows:
        return torch.zeros(0, b2.shape[0], dtype=boxes1.dtype)
    return torch.stack(rows).to(boxes1.dtype)


def greedy_nms_rotated(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> list[int]:
    """Keep the best remaining box, drop those with IoU > threshold with it, repeat."""
    order = scores.argsort(descending=True)
    overlaps = dense_pairwise_iou_rotated(boxes[order], boxes[order]) > iou_threshold
    suppressed = [False] * order.numel()
    keep = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        for j in overlaps[i].nonzero().flatten().tolist():
            suppressed[j] = True
    return keep


def per_class_nms_rotated(boxes, scores, idxs, iou_threshold: float) -> list[int]:
    """Greedy NMS run class by class, the kept boxes of all classes merged by decreasing score."""
    keep = []
    for c in idxs.unique().tolist():
        members = (idxs == c).nonzero().flatten()
        keep += members[greedy_nms_rotated(boxes[members], scores[members], iou_threshold)].tolist()
    return sorted(keep, key=lambda k: -float(scores[k]))


def clustered_rotated_boxes(
    n: int, n_objects: int, jitter: float, generator: torch.Generator, extent: float = 300.0, max_size: float = 60.0
) -> torch.Tensor:
    """Proposal-like boxes: ``n`` noisy copies of ``n_objects`` rotated boxes (centres in an
    ``extent``-pixel square, sides 10 to 10 + ``max_size``), jitter in pixels and ten times that
    in degrees."""
    objects = torch.cat(
        [
            torch.rand(n_objects, 2, generator=generator) * extent,
            torch.rand(n_objects, 2, generator=generator) * max_size + 10,
            torch.rand(n_objects, 1, generator=generator) * 360 - 180,
        ],
        dim=1,
    )
    boxes = objects[torch.randint(0, n_objects, (n,), generator=generator)]
    boxes = boxes + torch.randn(n, 5, generator=generator) * torch.tensor([jitter] * 4 + [10 * jitter])
    boxes[:, 2:4] = boxes[:, 2:4].abs() + 1
    return boxes
