"""Non-maximum suppression (detectron2.layers.nms): torchvision's kernels under detectron2's names,
and rotated NMS in plain torch (scriptable, like every function here)."""

from typing import List

import torch
from torchvision.ops import boxes as box_ops
from torchvision.ops import nms

from .rotated_boxes import rotated_iou_above

__all__ = ["batched_nms", "batched_nms_rotated", "nms", "nms_rotated"]

# Rotated boxes taken at once by nms_rotated: their IoUs with each other are all computed.
_NMS_BLOCK = 64


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
    return _blocked_nms_rotated(boxes, scores, iou_threshold)


def _blocked_nms_rotated(
    boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, block_size: int = _NMS_BLOCK
) -> torch.Tensor:
    """The greedy of ``nms_rotated``, taking boxes by blocks of ``block_size`` in score order.

    A block first loses the boxes that a box kept so far suppresses, then the greedy runs inside
    it. Only IoUs with kept boxes are computed, as detectron2's kernel does, so a dense cluster
    costs little more than its kept boxes.
    """
    order = scores.argsort(descending=True)
    sorted_boxes = boxes[order]
    kept = torch.zeros(0, dtype=torch.long, device=boxes.device)
    for start in range(0, order.numel(), block_size):
        block = torch.arange(start, min(order.numel(), start + block_size), device=boxes.device)
        if kept.numel() > 0:
            hit = rotated_iou_above(sorted_boxes[kept], sorted_boxes[block], iou_threshold, False)
            block = block[~hit.any(dim=0)]
        above = rotated_iou_above(sorted_boxes[block], sorted_boxes[block], iou_threshold, True)
        suppressed = torch.zeros(block.numel(), dtype=torch.bool, device=boxes.device)
        keep: List[int] = []
        for i in range(block.numel()):
            if not bool(suppressed[i]):
                keep.append(i)
                suppressed |= above[i]
        kept = torch.cat([kept, block[torch.tensor(keep, dtype=torch.long, device=boxes.device)]])
    return order[kept]


def batched_nms_rotated(
    boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, iou_threshold: float
) -> torch.Tensor:
    """Rotated NMS done independently per category ``idxs``; kept indices by decreasing score."""
    assert boxes.shape[-1] == 5
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64, device=boxes.device)
    return nms_rotated(separate_categories_rotated(boxes, idxs), scores, iou_threshold)


def separate_categories_rotated(boxes: torch.Tensor, idxs: torch.Tensor) -> torch.Tensor:
    """float32 copy of rotated ``boxes`` (N >= 1), moved apart by a per-category offset larger
    than the extent of all boxes (negative coordinates included), so that one NMS call handles
    every category ``idxs``."""
    boxes = boxes.float()  # fp16 lacks the range for the offsets
    max_coordinate = (torch.max(boxes[:, 0], boxes[:, 1]) + torch.max(boxes[:, 2], boxes[:, 3]) / 2).max()
    min_coordinate = (torch.min(boxes[:, 0], boxes[:, 1]) - torch.max(boxes[:, 2], boxes[:, 3]) / 2).min()
    offsets = idxs.to(boxes) * (max_coordinate - min_coordinate + 1)
    boxes_for_nms = boxes.clone()
    boxes_for_nms[:, :2] += offsets[:, None]
    return boxes_for_nms
