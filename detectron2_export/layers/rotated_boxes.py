"""IoU between rotated boxes (detectron2.layers.rotated_boxes), in plain torch and TorchScript.

detectron2 computes it with a C++/CUDA kernel; the method here is the same: the intersection of
two rectangles is a convex polygon whose vertices are the corners of each box lying inside the
other plus the crossings of their edges. Those candidate points are ordered by angle around their
mean and the polygon area follows from the shoelace formula. Computed in float64.

Most pairs of a real set of boxes do not touch: the polygon is only computed for pairs whose
axis-aligned hulls overlap, the others get 0 without it (what the polygon would give). Every
function here compiles with ``torch.jit.script``, so scripted models can call them (TorchScript
reads no module globals: the constants below reach the functions as default arguments).
"""

import math
from typing import List, Tuple

import torch

__all__ = ["pairwise_iou_rotated"]

# Box pairs whose polygon is computed at once (each holds 24 candidate points).
_PAIRS_PER_CHUNK = 1 << 14
# Box pairs whose hulls are compared at once.
_HULL_PAIRS_PER_CHUNK = 1 << 20
# Hulls farther apart than this (pixels) do not touch, whatever the rounding: the corner-inside
# test below accepts points up to 1e-6 outside a box.
_HULL_MARGIN = 1e-4
# A box of smaller area has IoU 0 with everything, as in detectron2's kernel.
_MIN_AREA = 1e-14


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


def _hull_half_extents(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 5) float64 -> (N, 2) half width and half height of each box's axis-aligned hull."""
    theta = boxes[:, 4] * (math.pi / 180.0)
    cos, sin = theta.cos().abs(), theta.sin().abs()
    w, h = boxes[:, 2], boxes[:, 3]
    return torch.stack([w * cos + h * sin, w * sin + h * cos], dim=1) / 2


def _touching_pairs(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    iou_threshold: float,
    upper_triangle: bool,
    chunk: int = _HULL_PAIRS_PER_CHUNK,
    margin: float = _HULL_MARGIN,
    min_area: float = _MIN_AREA,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i, j) of float64 boxes that may have IoU > ``iou_threshold``.

    A pair is left out when its hulls are apart (IoU 0), or when even the overlap of its hulls,
    capped by the smaller box, bounds the IoU below ``iou_threshold`` (pass a negative threshold
    to keep every touching pair). ``upper_triangle`` keeps only i < j.
    """
    n, m = boxes1.shape[0], boxes2.shape[0]
    area1 = boxes1[:, 2] * boxes1[:, 3]
    area2 = boxes2[:, 2] * boxes2[:, 3]
    ext1, ext2 = _hull_half_extents(boxes1), _hull_half_extents(boxes2)
    rows = max(1, chunk // max(m, 1))
    firsts: List[torch.Tensor] = []
    seconds: List[torch.Tensor] = []
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        gap = (boxes1[start:stop, None, :2] - boxes2[None, :, :2]).abs()
        reach = ext1[start:stop, None, :] + ext2[None, :, :]
        near = (gap <= reach + margin).all(dim=2)
        near &= (area1[start:stop, None] >= min_area) & (area2[None, :] >= min_area)
        if iou_threshold >= 0:
            overlap = (reach - gap).clamp(min=0)  # sides of the hulls' overlap
            inter = torch.min(overlap[..., 0] * overlap[..., 1], torch.min(area1[start:stop, None], area2[None, :]))
            bound = inter / (area1[start:stop, None] + area2[None, :] - inter).clamp(min=min_area)
            # relative slack: the exact IoU is compared after rounding to float32
            near &= bound >= iou_threshold * (1.0 - 1e-6)
        if upper_triangle:
            i = torch.arange(start, stop, device=boxes1.device)[:, None]
            near &= i < torch.arange(m, device=boxes1.device)[None, :]
        ij = near.nonzero()
        firsts.append(ij[:, 0] + start)
        seconds.append(ij[:, 1])
    if len(firsts) == 0:
        empty = torch.zeros(0, dtype=torch.long, device=boxes1.device)
        return empty, empty
    return torch.cat(firsts), torch.cat(seconds)


def _pair_ious(
    boxes1: torch.Tensor,
    boxes2: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    chunk: int = _PAIRS_PER_CHUNK,
    min_area: float = _MIN_AREA,
) -> torch.Tensor:
    """IoU of the float64 pairs boxes1[i[k]], boxes2[j[k]] (none degenerate) -> (K,) float64."""
    out = torch.zeros(i.shape[0], dtype=torch.float64, device=boxes1.device)
    for start in range(0, i.shape[0], chunk):
        stop = min(i.shape[0], start + chunk)
        p1, p2 = boxes1[i[start:stop]], boxes2[j[start:stop]]
        inter = _intersection_area(p1, p2)
        union = p1[:, 2] * p1[:, 3] + p2[:, 2] * p2[:, 3] - inter
        out[start:stop] = inter / union.clamp(min=min_area)
    return out


def rotated_iou_above(
    boxes1: torch.Tensor, boxes2: torch.Tensor, iou_threshold: float, upper_triangle: bool
) -> torch.Tensor:
    """(N, M) bool: IoU(boxes1[i], boxes2[j]) > ``iou_threshold``, compared in the boxes' dtype
    (as ``pairwise_iou_rotated(boxes1, boxes2) > iou_threshold``), the polygon computed only for
    pairs that may pass. ``upper_triangle`` leaves i >= j False."""
    b1, b2 = boxes1.double(), boxes2.double()
    above = torch.zeros(b1.shape[0], b2.shape[0], dtype=torch.bool, device=boxes1.device)
    i, j = _touching_pairs(b1, b2, iou_threshold, upper_triangle)
    if i.numel() > 0:
        above[i, j] = _pair_ious(b1, b2, i, j).to(boxes1.dtype) > iou_threshold
    return above


def pairwise_iou_rotated(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU between rotated boxes (N, 5) and (M, 5) = (cx, cy, w, h, angle_deg).

    Pairs involving a box of area < 1e-14 get 0, as in detectron2's kernel.
    """
    b1, b2 = boxes1.double(), boxes2.double()
    ious = torch.zeros(b1.shape[0], b2.shape[0], dtype=torch.float64, device=boxes1.device)
    i, j = _touching_pairs(b1, b2, -1.0, False)
    if i.numel() > 0:
        ious[i, j] = _pair_ious(b1, b2, i, j)
    return ious.to(boxes1.dtype)
