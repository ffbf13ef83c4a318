"""Slow, obviously-correct rotated IoU and NMS: the project's previous implementation, kept as the
reference of the fast one (every pair's polygon computed, then the plain greedy loop)."""

from __future__ import annotations

import torch

from detectron2_export.layers.rotated_boxes import _intersection_area


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
