"""Normalisation and padding in the graph, as ``ImageList.from_tensors`` after normalisation.

The graph takes a batch of raw images placed top-left in an (N, C, H, W) tensor with each image's
(height, width) in ``image_sizes``: whatever lies outside an image is ignored (set to 0 after
normalisation, like detectron2's padding), and the batch is padded to the backbone's size divisibility.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from .extent import ceil_div, inside


def normalize_and_pad(
    images: Tensor, image_sizes: Tensor, pixel_mean: Tensor, pixel_std: Tensor, size_divisibility: int
) -> Tensor:
    """(N, C, H, W) raw images -> normalised images, zero outside each image, H and W rounded up to
    a multiple of ``size_divisibility`` (when > 1)."""
    x = (images - pixel_mean[None]) / pixel_std[None]
    x = torch.where(inside(x, image_sizes)[:, None], x, torch.zeros_like(x))
    if size_divisibility > 1:
        height, width = x.shape[2], x.shape[3]
        pad_h = (size_divisibility - height % size_divisibility) % size_divisibility
        pad_w = (size_divisibility - width % size_divisibility) % size_divisibility
        x = F.pad(x, (0, pad_w, 0, pad_h))
    return x


def padded_sizes(image_sizes: Tensor, size_divisibility: int) -> Tensor:
    """The size each image would be padded to alone: its size rounded up to the divisibility.

    Feature-map locations beyond it exist only because of larger images in the batch; ignoring
    them (see ``anchors.py``) makes a batched run give each image its single-run detections.
    """
    if size_divisibility <= 1:
        return image_sizes
    return ceil_div(image_sizes, size_divisibility) * size_divisibility
