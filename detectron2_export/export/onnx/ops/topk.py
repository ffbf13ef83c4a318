"""``TopK`` with k = min(k, size of the axis): onnxruntime fails when k exceeds the axis length,
and the axis length (boxes per level, candidates per image) is only known at run time."""

from __future__ import annotations

import torch
from torch import Tensor


class _TopK(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, k: int, dim: int) -> tuple[Tensor, Tensor]:
        return torch.topk(x, min(k, x.shape[dim]), dim=dim, largest=True, sorted=True)

    @staticmethod
    def symbolic(g, x, k: int, dim: int):
        size = g.op("Gather", g.op("Shape", x), g.op("Constant", value_t=torch.tensor([dim])), axis_i=0)
        k = g.op("Min", g.op("Constant", value_t=torch.tensor([k], dtype=torch.int64)), size)
        return g.op("TopK", x, k, axis_i=dim, largest_i=1, sorted_i=1, outputs=2)


ALL = 2**62
"""``k`` for "the whole axis, sorted" (the axis length may be a traced value, ``k`` must be an int)."""


def topk(x: Tensor, k: int, dim: int = -1) -> tuple[Tensor, Tensor]:
    """The largest ``min(k, x.shape[dim])`` values of ``x`` along ``dim``, sorted, and their indices."""
    if dim < 0:
        dim += x.dim()
    values, indices = _TopK.apply(x, k, dim)
    return values, indices
