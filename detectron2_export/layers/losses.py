"""Distance-IoU and Complete-IoU box losses (detectron2.layers.losses, https://arxiv.org/abs/1911.08287).

Training losses, kept because ``detectron2.layers`` exports them; they are plain torch.
"""

from __future__ import annotations

import math

import torch

__all__ = ["diou_loss", "ciou_loss"]


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean() if loss.numel() > 0 else 0.0 * loss.sum()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"box loss: reduction={reduction!r}, expected 'none', 'mean' or 'sum'")


def _iou_and_center_term(boxes1: torch.Tensor, boxes2: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and (centre distance / enclosing-box diagonal)^2 of matched XYXY boxes (..., 4)."""
    x1, y1, x2, y2 = boxes1.unbind(dim=-1)
    x1g, y1g, x2g, y2g = boxes2.unbind(dim=-1)
    if not ((x2 >= x1).all() and (y2 >= y1).all()):
        raise ValueError("box loss: boxes1 has x2 < x1 or y2 < y1, expected XYXY boxes")
    inter_w = (torch.min(x2, x2g) - torch.max(x1, x1g)).clamp(min=0)
    inter_h = (torch.min(y2, y2g) - torch.max(y1, y1g)).clamp(min=0)
    intersection = inter_w * inter_h
    union = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - intersection + eps
    iou = intersection / union
    diagonal = (torch.max(x2, x2g) - torch.min(x1, x1g)) ** 2 + (torch.max(y2, y2g) - torch.min(y1, y1g)) ** 2 + eps
    distance = ((x1 + x2) - (x1g + x2g)) ** 2 / 4 + ((y1 + y2) - (y1g + y2g)) ** 2 / 4
    return iou, distance / diagonal


def diou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """1 - IoU + (centre distance / diagonal of the smallest enclosing box)^2, per pair of boxes."""
    iou, center_term = _iou_and_center_term(boxes1, boxes2, eps)
    return _reduce(1 - iou + center_term, reduction)


def ciou_loss(boxes1: torch.Tensor, boxes2: torch.Tensor, reduction: str = "none", eps: float = 1e-7) -> torch.Tensor:
    """The DIoU loss plus an aspect-ratio term ``alpha * v``, ``v = 4 / pi^2 * (atan(w_g / h_g) -
    atan(w / h))^2`` and ``alpha = v / (1 - IoU + v)`` (no gradient through alpha)."""
    iou, center_term = _iou_and_center_term(boxes1, boxes2, eps)
    w, h = boxes1[..., 2] - boxes1[..., 0], boxes1[..., 3] - boxes1[..., 1]
    w_g, h_g = boxes2[..., 2] - boxes2[..., 0], boxes2[..., 3] - boxes2[..., 1]
    v = (4 / math.pi**2) * (torch.atan(w_g / h_g) - torch.atan(w / h)) ** 2
    with torch.no_grad():
        alpha = v / (1 - iou + v + eps)
    return _reduce(1 - iou + center_term + alpha * v, reduction)
