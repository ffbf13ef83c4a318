"""``detector_postprocess`` in the graph: detections rescaled from each image's network-input size
to its requested output size, clipped, empty boxes dropped and the survivors moved to the front."""

from __future__ import annotations

from typing import Dict

import torch
from torch import Tensor

from .boxes import clip, gather_rows, nonempty
from .nms import NEG_INF
from .ops import ALL, topk


def output_scales(image_sizes: Tensor, output_sizes: Tensor) -> Tensor:
    """(N, 2) (scale_x, scale_y) of every image: output size over network-input size."""
    ratio = output_sizes.to(torch.float32) / image_sizes.to(torch.float32)
    return torch.stack((ratio[:, 1], ratio[:, 0]), dim=1)


def rescale_detections(
    boxes: Tensor, scores: Tensor, image_sizes: Tensor, output_sizes: Tensor, per_detection: Dict[str, Tensor]
) -> tuple[Tensor, Tensor, Tensor, Dict[str, Tensor]]:
    """Scale and clip (N, D, 4) ``boxes`` to the output sizes; detections that become empty are
    dropped and the rest kept in order at the front.

    ``scores`` (N, D) marks missing detections with ``-inf``; ``per_detection`` holds the other
    (N, D, ...) outputs, reordered alike. Returns boxes, scores, the (N,) number of detections of
    every image and the reordered ``per_detection``.
    """
    scales = output_scales(image_sizes, output_sizes)
    boxes = boxes * scales.repeat(1, 2)[:, None, :]
    boxes = clip(boxes, output_sizes)
    valid = (scores > NEG_INF) & nonempty(boxes)
    order = front_first(valid)
    boxes = gather_rows(boxes, order)
    scores = gather_rows(torch.where(valid, scores, torch.full_like(scores, NEG_INF)), order)
    count = valid.to(torch.int64).sum(dim=1)
    return boxes, scores, count, {name: gather_rows(x, order) for name, x in per_detection.items()}


def front_first(valid: Tensor) -> Tensor:
    """(N, D) permutation putting each row's True entries first, each group in its order (a stable
    partition: TopK of ``D * valid + D - position``, distinct integers, so without ties)."""
    length = valid.shape[1]
    positions = torch.arange(length, device=valid.device, dtype=torch.float32)
    key = valid.to(torch.float32) * length + (length - positions)[None, :]
    return topk(key, ALL, dim=1)[1]
