"""Mask outputs in the graph: the predicted class's 28x28 mask probabilities (``mask_rcnn_inference``)
and, optionally, their pasting into the output image (``paste_masks_in_image``) by one batched
``GridSample`` over all detections instead of a loop."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def select_class_masks(mask_logits: Tensor, classes: Tensor) -> Tensor:
    """(R, K, M, M) (or class-agnostic (R, 1, M, M)) logits -> (R, M, M) probabilities of each
    region's class ``classes`` (R,)."""
    if mask_logits.shape[1] == 1:
        return mask_logits[:, 0].sigmoid()
    size = mask_logits.shape[2:]
    index = classes.reshape(-1, 1, 1, 1).expand(-1, 1, *size)
    return torch.gather(mask_logits, 1, index)[:, 0].sigmoid()


def paste_masks(masks: Tensor, boxes: Tensor, output_sizes: Tensor, threshold: float = 0.5) -> Tensor:
    """(N, D, M, M) mask probabilities in (N, D, 4) output-pixel boxes -> (N, D, H, W) bool masks,
    H and W the largest output size of the batch (each image's own size is its top-left corner).

    Pixel centres sit at ``i + 0.5``; each is sampled bilinearly from its box's mask with zero
    padding outside it (``grid_sample``, ``align_corners=False``) and compared ``>= threshold``.
    """
    n, d, m = masks.shape[0], masks.shape[1], masks.shape[2]
    height = output_sizes[:, 0].max()
    width = output_sizes[:, 1].max()
    ys = torch.arange(height, device=masks.device).to(torch.float32) + 0.5
    xs = torch.arange(width, device=masks.device).to(torch.float32) + 0.5
    x0, y0, x1, y1 = boxes.unbind(dim=-1)  # each (N, D)
    gy = (ys[None, None, :] - y0[..., None]) / (y1 - y0)[..., None] * 2 - 1  # (N, D, H)
    gx = (xs[None, None, :] - x0[..., None]) / (x1 - x0)[..., None] * 2 - 1  # (N, D, W)
    h, w = gy.shape[2], gx.shape[2]
    grid = torch.stack(
        (gx[:, :, None, :].expand(-1, -1, h, -1), gy[:, :, :, None].expand(-1, -1, -1, w)), dim=-1
    ).reshape(-1, h, w, 2)
    pasted = F.grid_sample(masks.reshape(-1, 1, m, m), grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (pasted >= threshold).reshape(n, d, h, w)
