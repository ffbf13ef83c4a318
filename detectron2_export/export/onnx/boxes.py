"""Box arithmetic on batched (N, B, 4) XYXY tensors, with per-image sizes as tensors."""

from __future__ import annotations

from torch import Tensor
import torch


def clip(boxes: Tensor, sizes: Tensor) -> Tensor:
    """Clip (N, ..., 4) boxes to each image's (height, width) in ``sizes`` (N, 2), as ``Boxes.clip``."""
    shape = [sizes.shape[0]] + [1] * (boxes.dim() - 2)
    h = sizes[:, 0].to(boxes.dtype).reshape(shape)
    w = sizes[:, 1].to(boxes.dtype).reshape(shape)
    zero = torch.zeros_like(h)
    x1 = torch.minimum(torch.maximum(boxes[..., 0], zero), w)
    y1 = torch.minimum(torch.maximum(boxes[..., 1], zero), h)
    x2 = torch.minimum(torch.maximum(boxes[..., 2], zero), w)
    y2 = torch.minimum(torch.maximum(boxes[..., 3], zero), h)
    return torch.stack((x1, y1, x2, y2), dim=-1)


def nonempty(boxes: Tensor, threshold: float = 0.0) -> Tensor:
    """Boxes whose width and height are both above ``threshold``, as ``Boxes.nonempty``."""
    return ((boxes[..., 2] - boxes[..., 0]) > threshold) & ((boxes[..., 3] - boxes[..., 1]) > threshold)


def all_finite(x: Tensor) -> Tensor:
    """Over the last axis: every value finite (``torch.isfinite(x).all(-1)``, written with a
    comparison so that ONNX sees ``Equal``/``Less`` and no ``IsInf``-with-NaN corner cases)."""
    return ((x == x) & (x.abs() < float("inf"))).all(dim=-1)


def gather_rows(x: Tensor, index: Tensor) -> Tensor:
    """``x[n, index[n, j]]`` for (N, B, ...) ``x`` and (N, K) ``index`` -> (N, K, ...)."""
    trailing = x.shape[2:]
    flat = index.reshape(index.shape[0], -1, *([1] * len(trailing))).expand(-1, -1, *trailing)
    return torch.gather(x, 1, flat)
