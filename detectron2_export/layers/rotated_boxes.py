"""IoU between rotated boxes (detectron2.layers.rotated_boxes), in plain torch.

detectron2 computes it with a C++/CUDA kernel; the method here is the same: the intersection of
two rectangles is a convex polygon whose vertices are the corners of each box lying inside the
other plus the crossings of their edges. Those candidate points are ordered by angle around their
mean and the polygon area follows from the shoelace formula. Computed in float64.
"""

import math

import torch

__all__ = ["pairwise_iou_rotated"]

# Box pairs handled at once (each holds 24 candidate points).
_PAIRS_PER_CHUNK = 1 << 16


def _corners(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 5) (cx, cy, w, h, angle_deg) -> (N, 4, 2) corners in order around the box."""
    cx, cy, w, h, a = boxes.unbind(dim=1)
    theta = a * (math.pi / 180.0)
    cos, sin = theta.cos(), theta.sin()
    # same convention as BoxMode / RotatedBoxes: counter-clockwise in image coordinates (y down)
    dx = torch.stack([-w, w, w, -w], dim=1) / 2
    dy = torch.stack([-h, -h, h, h], dim=1) / 2
    x = cx[:, None] + dx * cos[:, None] + dy * sin[:, None]
    y = cy[:, None] - dx * sin[:, None] + dy * cos[:, None]
    return torch.stack([x, y], dim=2)


def _inside(points: torch.Tensor, boxes: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """points (P, K, 2) against their boxes (P, 5): (P, K) bool, borders included."""
    cx, cy, w, h, a = boxes.unbind(dim=1)
    theta = a * (math.pi / 180.0)
    cos, sin = theta.cos()[:, None], theta.sin()[:, None]
    px = points[..., 0] - cx[:, None]
    py = points[..., 1] - cy[:, None]
    # coordinates along the box's own axes (inverse of _corners' rotation)
    u = px * cos - py * sin
    v = px * sin + py * cos
    return (u.abs() <= w[:, None] / 2 + eps) & (v.abs() <= h[:, None] / 2 + eps)


def _edge_crossings(c1: torch.Tensor, c2: torch.Tensor):
    """Crossing points of the 4 edges of c1 with the 4 edges of c2 (P, 4, 2): (P, 16, 2), valid."""
    a = c1[:, :, None, :]
    b = c1.roll(-1, dims=1)[:, :, None, :]
    c = c2[:, None, :, :]
    d = c2.roll(-1, dims=1)[:, None, :, :]
    ab, cd, ac = b - a, d - c, c - a

    def cross(p, q):
        return p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0]

    denom = cross(ab, cd)
    parallel = denom.abs() < 1e-12
    safe = torch.where(parallel, torch.ones_like(denom), denom)
    t = cross(ac, cd) / safe
    s = cross(ac, ab) / safe
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


def pairwise_iou_rotated(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """(N, M) IoU between rotated boxes (N, 5) and (M, 5) = (cx, cy, w, h, angle_deg).

    Pairs involving a box of area < 1e-14 get 0, as in detectron2's kernel.
    """
    N, M = boxes1.shape[0], boxes2.shape[0]
    out_dtype = boxes1.dtype
    b1, b2 = boxes1.double(), boxes2.double()
    ious = torch.zeros(N, M, dtype=torch.float64, device=boxes1.device)
    if N == 0 or M == 0:
        return ious.to(out_dtype)
    area1 = b1[:, 2] * b1[:, 3]
    area2 = b2[:, 2] * b2[:, 3]
    rows = max(1, _PAIRS_PER_CHUNK // M)
    for start in range(0, N, rows):
        stop = min(N, start + rows)
        p1 = b1[start:stop, None, :].expand(-1, M, -1).reshape(-1, 5)
        p2 = b2[None, :, :].expand(stop - start, -1, -1).reshape(-1, 5)
        inter = _intersection_area(p1, p2).reshape(stop - start, M)
        union = area1[start:stop, None] + area2[None, :] - inter
        degenerate = (area1[start:stop, None] < 1e-14) | (area2[None, :] < 1e-14)
        ious[start:stop] = torch.where(degenerate, torch.zeros_like(inter), inter / union.clamp(min=1e-14))
    return ious.to(out_dtype)
