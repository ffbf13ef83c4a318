"""Box-head post-processing in the graph, as ``FastRCNNOutputLayers.inference``: decode the
per-class deltas, then (``fast_rcnn_inference``) clip, keep (box, class) pairs scoring above the
threshold, NMS per class, top-k per image."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from .boxes import all_finite, clip, gather_rows
from .nms import NEG_INF, batched_nms_topk
from .ops import ALL


def decode_predictions(predictor, predictions: tuple[Tensor, Tensor], regions: Tensor) -> tuple[Tensor, Tensor]:
    """(R, Kb*4) boxes and (R, K+1) class probabilities of the box predictor's outputs on (R, 4)
    regions, as ``predict_boxes`` / ``predict_probs``."""
    logits, deltas = predictions
    boxes = predictor.box2box_transform.apply_deltas(deltas, regions)
    probs = logits.sigmoid() if predictor.use_sigmoid_ce else F.softmax(logits, dim=-1)
    return boxes, probs


def fast_rcnn_detections(
    predictor, boxes: Tensor, probs: Tensor, proposal_valid: Tensor, image_sizes: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Detections of every image from decoded boxes and class probabilities of (N, P) regions.

    Args:
        predictor: the model's :class:`FastRCNNOutputLayers` (thresholds, top-k).
        boxes: (N*P, K*4) or class-agnostic (N*P, 4) boxes; ``probs`` (N*P, K+1).
        proposal_valid: (N, P) which regions are real.
        image_sizes: (N, 2) (height, width), for clipping.

    Returns:
        (N, D, 4) boxes, (N, D) scores (``-inf`` where an image has fewer than D detections) and
        (N, D) int64 classes, by decreasing score.
    """
    n, p = proposal_valid.shape[0], proposal_valid.shape[1]
    num_classes = probs.shape[1] - 1
    valid = proposal_valid.reshape(-1) & all_finite(boxes) & all_finite(probs)  # (N*P,)
    scores = probs[:, :-1].reshape(n, p, num_classes)
    boxes = boxes.reshape(n, p, -1, 4)
    boxes = clip(torch.where(valid.reshape(n, p, 1, 1), boxes, torch.zeros_like(boxes)), image_sizes)
    boxes = boxes.expand(-1, -1, num_classes, -1) if boxes.shape[2] == 1 else boxes

    candidate = valid.reshape(n, p, 1) & (scores > predictor.test_score_thresh)
    scores = torch.where(candidate, scores, torch.full_like(scores, NEG_INF)).reshape(n, -1)  # (N, P*K)
    boxes = boxes.reshape(n, -1, 4)
    classes = torch.arange(num_classes, device=scores.device).repeat(p)  # class of every (P*K) pair
    k = predictor.test_topk_per_image
    k = k if k >= 0 else ALL
    top_scores, index = batched_nms_topk(boxes, scores, classes, num_classes, predictor.test_nms_thresh, k)
    return gather_rows(boxes, index), top_scores, classes[index]
