"""IoU between rotated boxes (detectron2.layers.rotated_boxes), in plain torch and TorchScript.

detectron2 computes it with a C++/CUDA kernel that builds the intersection polygon (corners of
each box inside the other plus edge crossings, sorted by angle). Here the area comes from the
polygon's boundary instead: each box's edges clipped to the other box, summed with Green's
theorem; the same area without sorting, vectorized over pairs. Computed in float64.

Most pairs of a real set of boxes do not touch: the area is only computed for pairs whose
axis-aligned hulls overlap, the others get 0 without it (what the polygon would give). Every
function here compiles with ``torch.jit.script``, so scripted models can call them (TorchScript
reads no module globals: the constants below reach the functions as default arguments).
"""

import math
from typing import List, Tuple

import torch

__all__ = ["pairwise_iou_rotated"]

# Box pairs whose intersection is computed at once (each holds 2 x 16 edge/half-plane tests).
_PAIRS_PER_CHUNK = 1 << 12
# Box pairs whose hulls are compared at once.
_HULL_PAIRS_PER_CHUNK = 1 << 20
# Hulls farther apart than this (pixels) do not touch, whatever the rounding.
_HULL_MARGIN = 1e-4
# A box of smaller area has IoU 0 with everything, as in detectron2's kernel.
_MIN_AREA = 1e-14


def _corners_xy(boxes: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """(N, 5) (cx, cy, w, h, angle_deg) -> x and y (N, 4) of the corners, counter-clockwise in
    the (x right, y up) frame whatever the angle: the same convention as BoxMode / RotatedBoxes
    (the angle turns counter-clockwise in image coordinates, y down)."""
    theta = boxes[:, 4:5] * (math.pi / 180.0)
    cos, sin = theta.cos(), theta.sin()
    half_x = torch.tensor([-0.5, 0.5, 0.5, -0.5], dtype=boxes.dtype, device=boxes.device)
    half_y = torch.tensor([-0.5, -0.5, 0.5, 0.5], dtype=boxes.dtype, device=boxes.device)
    dx, dy = boxes[:, 2:3] * half_x, boxes[:, 3:4] * half_y
    return boxes[:, 0:1] + dx * cos + dy * sin, boxes[:, 1:2] - dx * sin + dy * cos


def _boundary_inside(
    x1: torch.Tensor, y1: torch.Tensor, x2: torch.Tensor, y2: torch.Tensor, keep_shared_edges: bool
) -> torch.Tensor:
    """Twice the signed area swept from the origin by the parts of polygon 1's edges that lie
    inside polygon 2 (both convex, counter-clockwise, corners (P, 4)): sum of cross(a, b) over
    those segments [a, b]. ``keep_shared_edges``: whether an edge lying on an edge of polygon 2
    with the same direction counts (exactly one of the two polygons must count it).

    Each edge a + t (b - a), t in [0, 1], is clipped by the 4 half-planes of polygon 2
    (Cyrus-Beck); cross(a + t0 d, a + t1 d) = cross(a, d) (t1 - t0).
    """
    dx, dy = x1.roll(-1, 1) - x1, y1.roll(-1, 1) - y1  # (P, 4): edge i of polygon 1
    ex, ey = (x2.roll(-1, 1) - x2)[:, None, :], (y2.roll(-1, 1) - y2)[:, None, :]  # (P, 1, 4): edge k of 2
    # side of the start of edge i w.r.t. edge k (>= 0 inside), and its rate along edge i: (P, 4, 4)
    side = ex * (y1[:, :, None] - y2[:, None, :]) - ey * (x1[:, :, None] - x2[:, None, :])
    rate = ex * dy[:, :, None] - ey * dx[:, :, None]
    parallel = rate == 0
    t = -side / torch.where(parallel, torch.ones_like(rate), rate)
    inf = torch.full_like(t, float("inf"))
    t_in = torch.where(rate > 0, t, -inf).amax(dim=2).clamp(min=0.0)
    t_out = torch.where(rate < 0, t, inf).amin(dim=2).clamp(max=1.0)
    if keep_shared_edges:
        same_direction = ex * dx[:, :, None] + ey * dy[:, :, None] > 0
        outside = (side < 0) | ((side == 0) & ~same_direction)
    else:
        outside = side <= 0
    blocked = (parallel & outside).any(dim=2)
    length = torch.where(blocked, torch.zeros_like(t_in), (t_out - t_in).clamp(min=0.0))
    return ((x1 * dy - y1 * dx) * length).sum(dim=1)


def _intersection_area(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """Intersection areas of matched pairs boxes1[i], boxes2[i] (P, 5) -> (P,).

    The boundary of the intersection is made of the parts of each box's edges inside the other
    box; its area is half the sum of cross(a, b) over those segments [a, b] (Green's theorem).
    """
    # shift both boxes so the pair's midpoint is at the origin: better precision far from (0, 0)
    center = (boxes1[:, :2] + boxes2[:, :2]) / 2
    x1, y1 = _corners_xy(torch.cat([boxes1[:, :2] - center, boxes1[:, 2:]], dim=1))
    x2, y2 = _corners_xy(torch.cat([boxes2[:, :2] - center, boxes2[:, 2:]], dim=1))
    twice = _boundary_inside(x1, y1, x2, y2, True) + _boundary_inside(x2, y2, x1, y1, False)
    return twice.abs() / 2


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
    # a degenerate box never touches: its hull is moved out of reach
    ext1 = torch.where((area1 >= min_area)[:, None], ext1, torch.full_like(ext1, -float("inf")))
    rows = max(1, chunk // max(m, 1))
    firsts: List[torch.Tensor] = []
    seconds: List[torch.Tensor] = []
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        # |centre distance| minus the hull half-extent of box 2, per axis: (rows, m)
        gap_x = (boxes1[start:stop, 0, None] - boxes2[None, :, 0]).abs() - ext2[None, :, 0]
        gap_y = (boxes1[start:stop, 1, None] - boxes2[None, :, 1]).abs() - ext2[None, :, 1]
        reach_x, reach_y = ext1[start:stop, 0, None], ext1[start:stop, 1, None]
        near = (gap_x <= reach_x + margin) & (gap_y <= reach_y + margin) & (area2 >= min_area)[None, :]
        if iou_threshold >= 0:
            a1, a2 = area1[start:stop, None], area2[None, :]
            # the hulls' overlap, capped by the smaller box, bounds the intersection
            inter = torch.min((reach_x - gap_x).clamp(min=0) * (reach_y - gap_y).clamp(min=0), torch.min(a1, a2))
            # relative slack: the exact IoU is compared after rounding to float32
            near &= inter >= iou_threshold * (1.0 - 1e-6) * (a1 + a2 - inter).clamp(min=min_area)
        if upper_triangle:  # row r is box start + r: keep j > start + r
            near = near.triu(1 + start)
        ij = near.nonzero()
        i, j = ij[:, 0] + start, ij[:, 1]
        firsts.append(i)
        seconds.append(j)
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
