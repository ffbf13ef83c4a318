"""``BatchPermutation``: reorder the first dimension by an index (SPEC 5.8)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import OperatorInputError
from ..registry import register_op
from .box_utils import caffe2_torch_ops


def batch_permutation(X: Tensor, indices: Tensor) -> Tensor:
    """The kernel of ``_caffe2::BatchPermutation``: ``Y[n] = X[indices[n]]``."""
    if indices.dim() != 1:
        raise OperatorInputError(f"BatchPermutation: indices shape={tuple(indices.shape)}, expected 1-D")
    if X.dim() == 0 or X.shape[0] != indices.shape[0]:
        raise OperatorInputError(
            f"BatchPermutation: X shape={tuple(X.shape)}, expected first dimension {indices.shape[0]} (len(indices))"
        )
    if indices.dtype.is_floating_point or indices.dtype.is_complex or indices.dtype == torch.bool:
        raise OperatorInputError(f"BatchPermutation: indices dtype={indices.dtype}, expected an integer type")
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= X.shape[0]):
        raise OperatorInputError(
            f"BatchPermutation: indices in [{int(indices.min())}, {int(indices.max())}], expected in [0, {X.shape[0] - 1}]"
        )
    return X.index_select(0, indices.long())


@register_op("BatchPermutation", n_inputs=(2, 2))
def batch_permutation_op(X: Tensor, indices: Tensor) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.BatchPermutation``."""
    return (caffe2_torch_ops().BatchPermutation(X, indices),)
