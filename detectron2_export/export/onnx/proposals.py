"""The RPN in the graph: per-level top-k, decode, clip, drop empty boxes, NMS per level, post-NMS
top-k (detectron2's ``RPN.forward`` + ``find_top_rpn_proposals`` at test time), for a whole batch.

Images of a batch keep their own anchors only (see ``anchors.anchors_inside``); an image's
proposals are padded to the post-NMS top-k with invalid entries.
"""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from .anchors import anchor_strides, anchors_inside, grid_anchors, per_anchor
from .boxes import all_finite, clip, gather_rows, nonempty
from .nms import NEG_INF, batched_nms_topk
from .ops import topk


def rpn_proposals(rpn, features: List[Tensor], image_sizes: Tensor, padded_sizes: Tensor) -> tuple[Tensor, Tensor]:
    """Proposals of every image.

    Args:
        rpn: the model's :class:`RPN`.
        features: the RPN's input feature maps, in ``rpn.in_features`` order.
        image_sizes: (N, 2) (height, width) of each image; ``padded_sizes`` the same rounded up to
            the size divisibility.

    Returns:
        (N, P, 4) proposal boxes by decreasing objectness and (N, P) bool: which are real.
    """
    strides, num_anchors = anchor_strides(rpn.anchor_generator)
    anchors = grid_anchors(rpn.anchor_generator, features)
    inside = anchors_inside(features, strides, num_anchors, padded_sizes)
    logits, deltas = rpn.rpn_head(features)
    box_dim = rpn.anchor_generator.box_dim
    pre_nms_topk = rpn.pre_nms_topk[False]
    post_nms_topk = rpn.post_nms_topk[False]

    level_boxes, level_scores, level_ids = [], [], []
    for level, (anchors_l, inside_l, logits_l, deltas_l) in enumerate(zip(anchors, inside, logits, deltas)):
        n = logits_l.shape[0]
        logits_l = per_anchor(logits_l, 1)[..., 0]  # (N, Hi*Wi*A)
        deltas_l = per_anchor(deltas_l, box_dim)  # (N, Hi*Wi*A, B)
        logits_l = torch.where(inside_l, logits_l, torch.full_like(logits_l, NEG_INF))
        scores_l, index = topk(logits_l, pre_nms_topk, dim=1)
        deltas_l = gather_rows(deltas_l, index)
        anchors_l = anchors_l[index]  # (N, k, 4)
        boxes_l = rpn.box2box_transform.apply_deltas(deltas_l.reshape(-1, box_dim), anchors_l.reshape(-1, box_dim))
        level_boxes.append(boxes_l.reshape(n, -1, box_dim))
        level_scores.append(scores_l)
        level_ids.append(torch.full_like(index[0], level))

    boxes = torch.cat(level_boxes, dim=1)
    scores = torch.cat(level_scores, dim=1)
    levels = torch.cat(level_ids, dim=0)

    valid = all_finite(boxes) & all_finite(scores[..., None])
    boxes = clip(torch.where(valid[..., None], boxes, torch.zeros_like(boxes)), image_sizes)
    valid = valid & nonempty(boxes, rpn.min_box_size)
    scores = torch.where(valid, scores, torch.full_like(scores, NEG_INF))

    top_scores, index = batched_nms_topk(boxes, scores, levels, len(features), rpn.nms_thresh, post_nms_topk)
    proposals = gather_rows(boxes, index)
    keep = top_scores > NEG_INF
    return torch.where(keep[..., None], proposals, torch.zeros_like(proposals)), keep
