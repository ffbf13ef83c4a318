"""Semantic-segmentation outputs in the graph, as ``sem_seg_postprocess`` for a whole batch: each
image's logits cropped to its network-input size and resized bilinearly to its output size.

Images of a batch have different scales, so the resize is one ``GridSample`` whose grid is each
image's own ``F.interpolate(..., align_corners=False)`` sampling positions.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def resize_to_outputs(logits: Tensor, image_sizes: Tensor, output_sizes: Tensor) -> Tensor:
    """(N, C, Hp, Wp) logits on the padded input -> (N, C, H, W) at the output sizes (H, W the
    largest of the batch; each image's own size is its top-left corner)."""
    padded = torch._shape_as_tensor(logits)[2:].to(torch.float32)
    height = output_sizes[:, 0].max()
    width = output_sizes[:, 1].max()
    gy = _grid_axis(height, image_sizes[:, 0], output_sizes[:, 0], padded[0])  # (N, H)
    gx = _grid_axis(width, image_sizes[:, 1], output_sizes[:, 1], padded[1])  # (N, W)
    h, w = gy.shape[1], gx.shape[1]
    grid = torch.stack((gx[:, None, :].expand(-1, h, -1), gy[:, :, None].expand(-1, -1, w)), dim=-1)
    return F.grid_sample(logits, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _grid_axis(length: Tensor, in_sizes: Tensor, out_sizes: Tensor, padded: Tensor) -> Tensor:
    """Normalised grid coordinates (N, length) along one axis: output pixel i of image n samples
    source position (i + 0.5) * in/out - 0.5, clamped to [0, in - 1] (bilinear ``interpolate``),
    expressed in the padded map of ``padded`` pixels."""
    scale = in_sizes.to(torch.float32) / out_sizes.to(torch.float32)
    positions = torch.arange(length, device=in_sizes.device).to(torch.float32)
    source = (positions[None, :] + 0.5) * scale[:, None] - 0.5
    source = torch.minimum(torch.clamp(source, min=0.0), (in_sizes.to(torch.float32) - 1)[:, None])
    return (2 * source + 1) / padded - 1
