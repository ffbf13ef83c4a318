"""Each image's extent in a padded batch: the rows and columns of a map (the input, a feature
level) that belong to it. Shared by the padding mask, the anchors and the batch isolation."""

from __future__ import annotations

import torch
from torch import Tensor


def ceil_div(sizes: Tensor, divisor: int) -> Tensor:
    """(N, 2) int64 ``ceil(sizes / divisor)``: an image's rows and columns at stride ``divisor``
    (stride-2 layers round up)."""
    return torch.div(sizes + (divisor - 1), divisor, rounding_mode="floor")


def inside(x: Tensor, extent: Tensor) -> Tensor:
    """(N, H, W) bool: the pixels of the (N, C, H, W) map ``x`` within each image's (N, 2) extent."""
    rows = torch.arange(x.shape[2], device=x.device)
    cols = torch.arange(x.shape[3], device=x.device)
    return (rows[None, :, None] < extent[:, 0, None, None]) & (cols[None, None, :] < extent[:, 1, None, None])
