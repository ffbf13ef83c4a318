"""``BatchPermutation``: reorder the first dimension by an index (SPEC 5.8)."""

from __future__ import annotations

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
    return X.index_select(0, indices.long())


@register_op("BatchPermutation", n_inputs=(2, 2))
def batch_permutation_op(X: Tensor, indices: Tensor) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.BatchPermutation``."""
    return (caffe2_torch_ops().BatchPermutation(X, indices),)
