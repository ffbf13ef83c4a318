"""Box utilities shared by the Caffe2 detection operators (SPEC 5.0).

These follow ``caffe2/operators/generate_proposals_op_util_{boxes,nms}.h``: float32 arithmetic
in the same order, the ``legacy_plus_one`` convention (``L = int(legacy_plus_one)``: widths are
``x2 - x1 + L``), rotated boxes ``(ctr_x, ctr_y, w, h, angle_degrees)``, and Caffe2's greedy NMS,
which keeps a box only when ``IoU <= thresh`` (so a NaN IoU suppresses, unlike ``IoU > thresh``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torchvision
from torch import Tensor

from ...errors import OperatorArgumentError
from ..arguments import to_float32

BBOX_XFORM_CLIP_DEFAULT = math.log(1000.0 / 16.0)
"""Upper clamp of the log-space width/height deltas (Caffe2's ``BBOX_XFORM_CLIP_DEFAULT``)."""


def caffe2_torch_ops():
    """``torch.ops._caffe2`` with this package's operator definitions loaded.

    Imported lazily: ``caffe2/library.py`` imports the kernels from the op modules, so the op
    modules must not import it at module level.
    """
    from .. import library  # noqa: F401  (defines the _caffe2 operators on import)

    return torch.ops._caffe2


def check_angle_bounds(where: str, angle_bound_lo: int, angle_bound_hi: int) -> None:
    """Caffe2 requires the angle period ``hi - lo`` to be a positive multiple of 180."""
    period = angle_bound_hi - angle_bound_lo
    if period <= 0 or period % 180 != 0:
        raise OperatorArgumentError(
            f"{where}: angle_bound_hi - angle_bound_lo={period}, expected a positive multiple of 180"
        )


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def bbox_transform(
    boxes: Tensor,
    deltas: Tensor,
    weights: tuple[float, float, float, float] | list[float] = (1.0, 1.0, 1.0, 1.0),
    *,
    legacy_plus_one: bool = False,
    angle_bound_on: bool = True,
    angle_bound_lo: int = -90,
    angle_bound_hi: int = 90,
    clip: float = BBOX_XFORM_CLIP_DEFAULT,
) -> Tensor:
    """Apply regression ``deltas`` (..., B) to ``boxes`` (..., B), broadcasting; B = 4 or 5."""
    if boxes.shape[-1] == 4:
        return _transform_upright(boxes, deltas, weights, clip, legacy_plus_one)
    return _transform_rotated(boxes, deltas, weights, clip, angle_bound_on, angle_bound_lo, angle_bound_hi)


def _scaled_deltas(deltas: Tensor, weights, clip: float) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    dx = deltas[..., 0] / weights[0]
    dy = deltas[..., 1] / weights[1]
    dw = (deltas[..., 2] / weights[2]).clamp(max=clip)
    dh = (deltas[..., 3] / weights[3]).clamp(max=clip)
    return dx, dy, dw, dh


def _transform_upright(boxes: Tensor, deltas: Tensor, weights, clip: float, legacy_plus_one: bool) -> Tensor:
    plus = float(legacy_plus_one)
    widths = boxes[..., 2] - boxes[..., 0] + plus
    heights = boxes[..., 3] - boxes[..., 1] + plus
    ctr_x = boxes[..., 0] + 0.5 * widths
    ctr_y = boxes[..., 1] + 0.5 * heights
    dx, dy, dw, dh = _scaled_deltas(deltas, weights, clip)
    pred_ctr_x = dx * widths + ctr_x
    pred_ctr_y = dy * heights + ctr_y
    pred_w = torch.exp(dw) * widths
    pred_h = torch.exp(dh) * heights
    return torch.stack(
        (
            pred_ctr_x - 0.5 * pred_w,
            pred_ctr_y - 0.5 * pred_h,
            pred_ctr_x + 0.5 * pred_w - plus,
            pred_ctr_y + 0.5 * pred_h - plus,
        ),
        dim=-1,
    )


def _transform_rotated(
    boxes: Tensor, deltas: Tensor, weights, clip: float, angle_bound_on: bool, lo: int, hi: int
) -> Tensor:
    dx, dy, dw, dh = _scaled_deltas(deltas, weights, clip)
    angle = deltas[..., 4] * 180.0 / math.pi + boxes[..., 4]
    if angle_bound_on:
        period = float(hi - lo)
        angle = torch.where(angle < lo, angle + period, torch.where(angle > hi, angle - period, angle))
    return torch.stack(
        (
            dx * boxes[..., 2] + boxes[..., 0],
            dy * boxes[..., 3] + boxes[..., 1],
            torch.exp(dw) * boxes[..., 2],
            torch.exp(dh) * boxes[..., 3],
            angle,
        ),
        dim=-1,
    )


# ---------------------------------------------------------------------------------------------
# Clipping and filtering
# ---------------------------------------------------------------------------------------------


def clip_boxes(
    boxes: Tensor,
    height: int | Tensor,
    width: int | Tensor,
    *,
    clip_angle_thresh: float = 1.0,
    legacy_plus_one: bool = False,
) -> Tensor:
    """Clip boxes (..., 4|5) to an image of integer size (tensor sizes broadcast like ``boxes[..., 0]``).

    Rotated boxes are clipped only when ``|angle| <= clip_angle_thresh`` (nearly upright).
    """
    plus = int(legacy_plus_one)
    if boxes.shape[-1] == 4:
        return _clip_upright(boxes, height, width, plus)
    x1 = boxes[..., 0] - (boxes[..., 2] - plus) / 2.0
    y1 = boxes[..., 1] - (boxes[..., 3] - plus) / 2.0
    x2 = boxes[..., 0] + (boxes[..., 2] - plus) / 2.0
    y2 = boxes[..., 1] + (boxes[..., 3] - plus) / 2.0
    clipped = _clip_upright(torch.stack((x1, y1, x2, y2), dim=-1), height, width, plus)
    cx1, cy1, cx2, cy2 = clipped.unbind(-1)
    upright = torch.stack(
        ((cx1 + cx2) / 2.0, (cy1 + cy2) / 2.0, cx2 - cx1 + plus, cy2 - cy1 + plus, boxes[..., 4]), dim=-1
    )
    near_upright = (boxes[..., 4].abs() <= clip_angle_thresh).unsqueeze(-1)
    return torch.where(near_upright, upright, boxes)


def _clip_upright(boxes: Tensor, height, width, plus: int) -> Tensor:
    # Caffe2 applies min(., size - L) first, then max(., 0).
    if isinstance(height, Tensor):
        x_max = (width - plus).to(boxes.dtype).unsqueeze(-1)
        y_max = (height - plus).to(boxes.dtype).unsqueeze(-1)
        limits = torch.cat((x_max, y_max, x_max, y_max), dim=-1)
        return torch.minimum(boxes, limits).clamp(min=0)
    limits = boxes.new_tensor([width - plus, height - plus, width - plus, height - plus])
    return torch.minimum(boxes, limits).clamp(min=0)


def filter_boxes(boxes: Tensor, min_size: float, im_info: Tensor, *, legacy_plus_one: bool = False) -> Tensor:
    """Mask of boxes with both sides >= ``min_size * im_info[2]`` and centre inside the image.

    ``im_info`` is one image's ``(height, width, scale)``; comparisons with the scaled minimum
    size are made in float64, like Caffe2's ``double min_size``.
    """
    im_h, im_w, scale = (float(v) for v in im_info.tolist())
    min_size = min_size * scale
    if boxes.shape[-1] == 4:
        plus = float(legacy_plus_one)
        ws = boxes[:, 2] - boxes[:, 0] + plus
        hs = boxes[:, 3] - boxes[:, 1] + plus
        x_ctr = boxes[:, 0] + ws / 2
        y_ctr = boxes[:, 1] + hs / 2
    else:
        x_ctr, y_ctr, ws, hs = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    return (
        (ws.double() >= min_size)
        & (hs.double() >= min_size)
        & (x_ctr < im_w)
        & (y_ctr < im_h)
    )


# ---------------------------------------------------------------------------------------------
# Overlaps
# ---------------------------------------------------------------------------------------------


def upright_ious(box: Tensor, others: Tensor, *, legacy_plus_one: bool = False) -> Tensor:
    """Caffe2's IoU of one XYXY box with each of ``others`` (M, 4), NaN for 0/0."""
    plus = float(legacy_plus_one)
    w = (torch.minimum(others[:, 2], box[2]) - torch.maximum(others[:, 0], box[0]) + plus).clamp(min=0)
    h = (torch.minimum(others[:, 3], box[3]) - torch.maximum(others[:, 1], box[1]) + plus).clamp(min=0)
    inter = w * h
    area = (box[2] - box[0] + plus) * (box[3] - box[1] + plus)
    areas = (others[:, 2] - others[:, 0] + plus) * (others[:, 3] - others[:, 1] + plus)
    return inter / (area + areas - inter)


def rotated_box_vertices(boxes: Tensor) -> Tensor:
    """Corners (M, 4, 2) of rotated boxes, in Caffe2's order and angle convention."""
    theta = -boxes[:, 4] * (math.pi / 180.0)
    b = torch.cos(theta) * 0.5
    a = torch.sin(theta) * 0.5
    cx, cy, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    p0 = torch.stack((cx - a * h - b * w, cy + b * h - a * w), dim=-1)
    p1 = torch.stack((cx + a * h - b * w, cy - b * h - a * w), dim=-1)
    centre = torch.stack((cx, cy), dim=-1)
    return torch.stack((p0, p1, 2 * centre - p0, 2 * centre - p1), dim=1)


def _cross(u: Tensor, v: Tensor) -> Tensor:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _inside(points: Tensor, rect: Tensor) -> Tensor:
    """points (M, P, 2) inside rect (M, 4, 2) (projections on two sides, borders included)."""
    ab = (rect[:, 1] - rect[:, 0]).unsqueeze(1)
    ad = (rect[:, 3] - rect[:, 0]).unsqueeze(1)
    ap = points - rect[:, :1]
    ap_ab = (ap * ab).sum(-1)
    ap_ad = (ap * ad).sum(-1)
    return (ap_ab >= 0) & (ap_ad >= 0) & (ap_ab <= (ab * ab).sum(-1)) & (ap_ad <= (ad * ad).sum(-1))


def rotated_intersections(box: Tensor, others: Tensor) -> Tensor:
    """Exact intersection areas (float64) of one rotated box with each of ``others`` (M, 5).

    The intersection polygon is built from the corners of each rectangle inside the other and the
    crossings of their edges, ordered by angle around its centroid, and measured by the shoelace
    formula (Caffe2 orders the same points with a convex hull).
    """
    m = others.shape[0]
    pts1 = rotated_box_vertices(box.double().unsqueeze(0)).expand(m, 4, 2)
    pts2 = rotated_box_vertices(others.double())
    vec1 = pts1.roll(-1, dims=1) - pts1
    vec2 = pts2.roll(-1, dims=1) - pts2
    # edge i of box 1 against edge j of box 2: (M, 4, 4)
    v1, p1 = vec1.unsqueeze(2), pts1.unsqueeze(2)
    v2, p2 = vec2.unsqueeze(1), pts2.unsqueeze(1)
    det = _cross(v2, v1)
    safe_det = torch.where(det.abs() > 1e-14, det, torch.ones_like(det))
    v12 = p2 - p1
    t1 = _cross(v2, v12) / safe_det
    t2 = _cross(v1, v12) / safe_det
    crossing = (det.abs() > 1e-14) & (t1 >= 0) & (t1 <= 1) & (t2 >= 0) & (t2 <= 1)
    crossing_pts = (p1 + t1.unsqueeze(-1) * v1).reshape(m, 16, 2)
    points = torch.cat((crossing_pts, pts1, pts2), dim=1)
    valid = torch.cat((crossing.reshape(m, 16), _inside(pts1, pts2), _inside(pts2, pts1)), dim=1)
    count = valid.sum(1)
    centroid = (points * valid.unsqueeze(-1)).sum(1) / count.clamp(min=1).unsqueeze(-1)
    rel = points - centroid.unsqueeze(1)
    angle = torch.atan2(rel[..., 1], rel[..., 0]).masked_fill(~valid, math.inf)
    order = angle.argsort(dim=1)
    ordered = rel.gather(1, order.unsqueeze(-1).expand(m, points.shape[1], 2))
    ordered_valid = valid.gather(1, order)
    # padding points repeat the first vertex so that they add nothing to the shoelace sum
    ordered = torch.where(ordered_valid.unsqueeze(-1), ordered, ordered[:, :1])
    area = _cross(ordered, ordered.roll(-1, dims=1)).sum(1).abs() / 2
    return torch.where(count > 2, area, torch.zeros_like(area))


def rotated_ious(box: Tensor, others: Tensor) -> Tensor:
    """Caffe2's rotated IoU (areas ``w * h``) of one box with each of ``others``, in float32."""
    inter = rotated_intersections(box, others).to(others.dtype)
    area = box[2] * box[3]
    areas = others[:, 2] * others[:, 3]
    return inter / (area + areas - inter)


# ---------------------------------------------------------------------------------------------
# Non-maximum suppression
# ---------------------------------------------------------------------------------------------


def nms(boxes: Tensor, thresh: float, top_n: int = -1, *, legacy_plus_one: bool = False) -> Tensor:
    """Caffe2's greedy NMS over ``boxes`` (M, 4|5) given in priority order.

    Returns the kept positions (ascending). Stops after ``top_n`` kept boxes when ``top_n >= 0``.
    """
    n = boxes.shape[0]
    if n == 0 or top_n == 0:
        return torch.zeros(0, dtype=torch.int64, device=boxes.device)
    if boxes.shape[1] == 5:
        keep = _greedy(boxes, thresh, top_n, rotated_ious)
    else:
        keep = _nms_upright(boxes, thresh, top_n, legacy_plus_one)
    return keep


def _nms_upright(boxes: Tensor, thresh: float, top_n: int, legacy_plus_one: bool) -> Tensor:
    plus = float(legacy_plus_one)
    areas = (boxes[:, 2] - boxes[:, 0] + plus) * (boxes[:, 3] - boxes[:, 1] + plus)
    if thresh < 0 or not bool((areas >= 0).all()):
        return _greedy(boxes, thresh, top_n, lambda b, o: upright_ious(b, o, legacy_plus_one=legacy_plus_one))
    # With non-negative areas an IoU is NaN only between two zero-area boxes, and a zero-area box
    # has IoU 0 with every positive one: torchvision's `IoU > thresh` greedy NMS on the positive
    # boxes, plus the first zero-area box, is exactly Caffe2's result.
    shifted = boxes + boxes.new_tensor([0.0, 0.0, plus, plus])
    thresh = to_float32(thresh)

    def keep_among_first(m: int) -> Tensor:
        positive = torch.nonzero(areas[:m] > 0).squeeze(1)
        priority = -torch.arange(positive.numel(), dtype=boxes.dtype, device=boxes.device)
        keep = positive[torchvision.ops.nms(shifted[positive], priority, thresh)]
        zero_area = torch.nonzero(areas[:m] == 0).squeeze(1)
        return torch.cat((keep, zero_area[:1])).sort().values if zero_area.numel() else keep

    # Greedy decisions on the first m boxes depend on those boxes only, and torchvision does not
    # stop early: grow the prefix until it yields top_n kept boxes.
    n = boxes.shape[0]
    m = n if top_n < 0 else min(n, 2 * top_n)
    keep = keep_among_first(m)
    while top_n >= 0 and keep.numel() < top_n and m < n:
        m = min(n, 2 * m)
        keep = keep_among_first(m)
    return keep[:top_n] if top_n >= 0 else keep


def _greedy(boxes: Tensor, thresh: float, top_n: int, ious: Callable[[Tensor, Tensor], Tensor]) -> Tensor:
    n = boxes.shape[0]
    suppressed = torch.zeros(n, dtype=torch.bool, device=boxes.device)
    positions = torch.arange(n, device=boxes.device)
    keep: list[int] = []
    for i in range(n):
        if top_n >= 0 and len(keep) >= top_n:
            break
        if bool(suppressed[i]):
            continue
        keep.append(i)
        rest = positions[i + 1 :][~suppressed[i + 1 :]]
        if rest.numel() == 0:
            break
        overlap = ious(boxes[i], boxes[rest])
        suppressed[rest[~(overlap <= thresh)]] = True
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device)


def soft_nms(
    boxes: Tensor,
    scores: Tensor,
    candidates: Tensor,
    *,
    sigma: float,
    overlap_thresh: float,
    score_thresh: float,
    method: str,
    legacy_plus_one: bool = False,
) -> tuple[Tensor, Tensor]:
    """Caffe2's Soft-NMS over ``candidates`` (indices into ``boxes``/``scores``, in index order).

    Returns ``(kept indices in pick order, updated scores for every row)``. ``method`` is
    ``"linear"`` (weight ``1 - IoU`` above ``overlap_thresh``) or ``"gaussian"``
    (``exp(-IoU**2 / sigma)``).
    """
    if boxes.shape[1] == 5:
        ious = rotated_ious
    else:
        def ious(b: Tensor, o: Tensor) -> Tensor:
            return upright_ious(b, o, legacy_plus_one=legacy_plus_one)

    out_scores = scores.clone()
    pending = candidates.clone()
    keep: list[int] = []
    while pending.numel() > 0:
        max_pos = int(out_scores[pending].argmax())
        i = int(pending[max_pos])
        keep.append(i)
        pending[[0, max_pos]] = pending[[max_pos, 0]]
        rest = pending[1:]
        if rest.numel() == 0:
            break
        overlap = ious(boxes[i], boxes[rest])
        if method == "linear":
            weight = torch.where(overlap > overlap_thresh, 1.0 - overlap, torch.ones_like(overlap))
        else:
            weight = torch.exp(-overlap * overlap / sigma)
        out_scores[rest] = out_scores[rest] * weight
        pending = rest[out_scores[rest] >= score_thresh]
    return torch.tensor(keep, dtype=torch.int64, device=boxes.device), out_scores
