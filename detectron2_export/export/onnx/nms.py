"""Grouped NMS then the top-k survivors of every image, as detectron2's ``batched_nms`` followed by
``keep[:k]``: RPN proposals (groups are levels), box-head and RetinaNet detections (groups are
classes). One ``NonMaxSuppression`` node for the whole batch, no loop."""

from __future__ import annotations

import torch
from torch import Tensor

from .ops import non_max_suppression, topk

NEG_INF = float("-inf")


def batched_nms_topk(
    boxes: Tensor, scores: Tensor, groups: Tensor, num_groups: int, iou_threshold: float, k: int
) -> tuple[Tensor, Tensor]:
    """NMS within each group of each image, then the ``k`` best kept boxes of each image.

    Args:
        boxes: (N, B, 4) candidate boxes.
        scores: (N, B) scores; ``-inf`` marks a candidate that is not one.
        groups: (B,) or (N, B) int64 group of every candidate, in [0, num_groups).
        k: boxes kept per image (fewer when fewer survive).

    Returns:
        (N, K) scores of the kept boxes, decreasing (``-inf`` pads images with fewer than K), and
        (N, K) their indices in B.
    """
    group_ids = torch.arange(num_groups, device=groups.device)
    groups = groups.expand(scores.shape) if groups.dim() == 2 else groups[None].expand(scores.shape)
    in_group = groups[:, None, :] == group_ids[None, :, None]  # (N, G, B)
    nms_scores = torch.where(in_group, scores[:, None, :], torch.full_like(scores[:, None, :], NEG_INF))
    kept = non_max_suppression(boxes, nms_scores, k, iou_threshold)
    image, box = kept[:, 0], kept[:, 2]
    survivors = torch.full_like(scores, NEG_INF).index_put((image, box), scores[image, box])
    return topk(survivors, k, dim=1)
