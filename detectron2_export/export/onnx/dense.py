"""Dense-detector (RetinaNet, FCOS) post-processing in the graph, as ``RetinaNet.inference_single_image``
for a whole batch: per level, scores above the threshold, top-k candidates, decode; then NMS per class
over all levels and the top detections. RetinaNet's scores are the class sigmoids; FCOS's the
geometric mean of class and centerness sigmoids."""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from .anchors import anchor_strides, anchors_inside, grid_anchors, per_anchor
from .boxes import gather_rows
from .nms import NEG_INF, batched_nms_topk
from .ops import topk


def level_scores(model, head_outputs: tuple) -> tuple[List[Tensor], List[Tensor]]:
    """Per level, (N, H*W*A, K) candidate scores and (N, A*4, H, W) deltas of the head's outputs:
    (logits, deltas) for RetinaNet, (logits, deltas, centerness) for FCOS."""
    logits, deltas = head_outputs[0], head_outputs[1]
    scores = [per_anchor(x, model.num_classes).sigmoid() for x in logits]
    if len(head_outputs) == 3:
        scores = [torch.sqrt(s * per_anchor(c, 1).sigmoid()) for s, c in zip(scores, head_outputs[2])]
    return scores, deltas


def dense_detections(model, features: List[Tensor], padded_sizes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(N, D, 4) boxes, (N, D) scores (``-inf`` pads) and (N, D) classes of a dense detector."""
    strides, num_anchors = anchor_strides(model.anchor_generator)
    anchors = grid_anchors(model.anchor_generator, features)
    inside = anchors_inside(features, strides, num_anchors, padded_sizes)
    scores, deltas = level_scores(model, model.head(features))
    num_classes = model.num_classes

    level_boxes, candidate_scores, level_classes = [], [], []
    for anchors_l, inside_l, scores_l, deltas_l in zip(anchors, inside, scores, deltas):
        n = scores_l.shape[0]
        keep = inside_l[..., None] & (scores_l > model.test_score_thresh)
        scores_l = torch.where(keep, scores_l, torch.full_like(scores_l, NEG_INF)).reshape(n, -1)
        scores_l, index = topk(scores_l, model.test_topk_candidates, dim=1)
        anchor_index = torch.div(index, num_classes, rounding_mode="floor")
        deltas_l = gather_rows(per_anchor(deltas_l, 4), anchor_index)
        boxes_l = model.box2box_transform.apply_deltas(deltas_l.reshape(-1, 4), anchors_l[anchor_index].reshape(-1, 4))
        level_boxes.append(boxes_l.reshape(n, -1, 4))
        candidate_scores.append(scores_l)
        level_classes.append(index - anchor_index * num_classes)

    boxes = torch.cat(level_boxes, dim=1)
    scores = torch.cat(candidate_scores, dim=1)
    classes = torch.cat(level_classes, dim=1)
    top_scores, index = batched_nms_topk(
        boxes, scores, classes, num_classes, model.test_nms_thresh, model.max_detections_per_image
    )
    return gather_rows(boxes, index), top_scores, torch.gather(classes, 1, index)
