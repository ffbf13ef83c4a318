"""Non-maximum suppression (detectron2.layers.nms): torchvision's kernels under detectron2's names."""

import torch
from torchvision.ops import boxes as box_ops
from torchvision.ops import nms

from .rotated_boxes import pairwise_iou_rotated

__all__ = ["batched_nms", "batched_nms_rotated", "nms", "nms_rotated"]


def batched_nms(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """NMS done independently per category ``idxs``; returns kept indices sorted by score.

    Boxes are (N, 4) XYXY; they are cast to float32 because fp16 lacks the range for the
    per-category coordinate offset torchvision may use.
    """
    assert boxes.shape[-1] == 4
    return box_ops.batched_nms(boxes.float(), scores, idxs, iou_threshold)


def nms_rotated(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy NMS of rotated boxes (N, 5) = (cx, cy, w, h, angle_deg).

    Repeatedly keeps the highest-scoring remaining box and drops the boxes whose IoU with it is
    > ``iou_threshold``. Returns the kept indices (int64), in decreasing score order.
    """
    assert boxes.shape[-1] == 5
    order = scores.argsort(descending=True)
    if order.numel() == 0:
        return order
    overlaps = pairwise_iou_rotated(boxes[order], boxes[order]) > iou_threshold
    suppressed = torch.zeros(order.numel(), dtype=torch.bool, device=boxes.device)
    keep = []
    for i in range(order.numel()):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlaps[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms_rotated(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Rotated NMS done independently per category ``idxs``; kept indices by decreasing score.

    Boxes of different categories are moved apart by a per-category offset larger than the
    extent of all boxes (negative coordinates included), so one NMS call handles every category.
    """
    assert boxes.shape[-1] == 5
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    boxes = boxes.float()  # fp16 lacks the range for the offsets
    max_coordinate = (torch.max(boxes[:, 0], boxes[:, 1]) + torch.max(boxes[:, 2], boxes[:, 3]) / 2).max()
    min_coordinate = (torch.min(boxes[:, 0], boxes[:, 1]) - torch.max(boxes[:, 2], boxes[:, 3]) / 2).min()
    offsets = idxs.to(boxes) * (max_coordinate - min_coordinate + 1)
    boxes_for_nms = boxes.clone()
    boxes_for_nms[:, :2] += offsets[:, None]
    return nms_rotated(boxes_for_nms, scores, iou_threshold)
