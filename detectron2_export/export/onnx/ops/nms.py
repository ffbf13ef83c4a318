"""ONNX ``NonMaxSuppression``: per image and per class, greedy NMS over boxes shared by all classes.

The node takes boxes (N, B, 4) and scores (N, C, B) and returns the kept (batch, class, box) triples,
grouped by image then class, each group in decreasing score. Boxes are given as (x1, y1, x2, y2): ONNX
reads (y1, x1, y2, x2), which gives the same IoU. The score filter is done by the callers: they mask
scores with ``-inf``, and the node's score threshold is the lowest finite float, so any finite score
(probability or logit) takes part and the strict ``score > threshold`` of detectron2 does not depend
on the runtime's comparison.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import nms

SCORE_FLOOR = float(torch.finfo(torch.float32).min)
"""The score threshold given to the node: every finite score is above it, ``-inf`` is not."""


class _NonMaxSuppression(torch.autograd.Function):
    @staticmethod
    def forward(ctx, boxes: Tensor, scores: Tensor, max_per_class: int, iou_threshold: float) -> Tensor:
        kept = []
        for n in range(scores.shape[0]):
            for c in range(scores.shape[1]):
                candidates = torch.nonzero(scores[n, c] > SCORE_FLOOR)[:, 0]
                keep = candidates[nms(boxes[n, candidates], scores[n, c, candidates], iou_threshold)]
                keep = keep[:max_per_class]
                prefix = torch.tensor([n, c], dtype=torch.int64, device=keep.device).expand(len(keep), 2)
                kept.append(torch.cat([prefix, keep[:, None]], dim=1))
        return torch.cat(kept) if kept else torch.zeros((0, 3), dtype=torch.int64, device=boxes.device)

    @staticmethod
    def symbolic(g, boxes, scores, max_per_class: int, iou_threshold: float):
        return g.op(
            "NonMaxSuppression",
            boxes,
            scores,
            g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64)),
            g.op("Constant", value_t=torch.tensor([iou_threshold], dtype=torch.float32)),
            g.op("Constant", value_t=torch.tensor([SCORE_FLOOR], dtype=torch.float32)),
            center_point_box_i=0,
        )


def non_max_suppression(boxes: Tensor, scores: Tensor, max_per_class: int, iou_threshold: float) -> Tensor:
    """Kept (batch, class, box) int64 triples (M, 3) of boxes (N, B, 4) with scores (N, C, B).

    A score of ``-inf`` marks a (class, box) pair that takes no part in the NMS.
    ``iou_threshold``: a box is suppressed by a kept box of the same image and class when their IoU
    is above it (torchvision's ``nms``). At most ``max_per_class`` boxes per image and class.
    """
    return _NonMaxSuppression.apply(boxes, scores, max_per_class, iou_threshold)
