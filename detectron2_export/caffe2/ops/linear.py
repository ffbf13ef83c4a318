"""Matrix products (SPEC 5.15): FC, FCTransposed, MatMul, BatchMatMul."""

from __future__ import annotations

import math

import torch

from ...errors import OperatorInputError
from ..op_args import check_rank, check_tensor, normalize_axis
from ..registry import Arg, register_op

_FC_ARGS = (Arg("axis", int, 1), Arg("axis_w", int, 1))
_FC_IGNORED = ("float16_compute", "enable_tensor_core", "use_cudnn")


def _as_matrix(op_type: str, name: str, x: torch.Tensor, axis: int) -> torch.Tensor:
    check_tensor(op_type, name, x)
    a = normalize_axis(op_type, axis, x.dim(), allow_end=True)
    return x.reshape(math.prod(x.shape[:a]), math.prod(x.shape[a:]))


def _fc(op_type: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, axis: int, axis_w: int, transposed: bool) -> torch.Tensor:
    x2 = _as_matrix(op_type, "X", x, axis)
    w2 = _as_matrix(op_type, "W", w, axis_w)
    if transposed:
        w2 = w2.t()
    n_out, k = w2.shape
    if x2.shape[1] != k:
        raise OperatorInputError(
            f"{op_type}: X shape={tuple(x.shape)} gives K={x2.shape[1]} at axis {axis}, W shape={tuple(w.shape)} "
            f"expects K={k}"
        )
    check_rank(op_type, "b", b, (1,))
    if b.shape[0] != n_out:
        raise OperatorInputError(f"{op_type}: b shape={tuple(b.shape)}, expected ({n_out},)")
    out_shape = list(x.shape[: normalize_axis(op_type, axis, x.dim(), allow_end=True)]) + [n_out]
    return torch.addmm(b, x2, w2.t()).reshape(out_shape)


@register_op("FC", n_inputs=(3, 3), args=_FC_ARGS, ignored_args=_FC_IGNORED)
def fc(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, axis: int, axis_w: int) -> tuple[torch.Tensor]:
    """X as (M, K) at ``axis``, W as (N, K) at ``axis_w``: Y = X W^T + b, shape dims[:axis] + [N]."""
    return (_fc("FC", x, w, b, axis, axis_w, transposed=False),)


@register_op("FCTransposed", n_inputs=(3, 3), args=_FC_ARGS, ignored_args=_FC_IGNORED)
def fc_transposed(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, *, axis: int, axis_w: int) -> tuple[torch.Tensor]:
    """As FC with W stored as (K, N): Y = X W + b."""
    return (_fc("FCTransposed", x, w, b, axis, axis_w, transposed=True),)


@register_op(
    "MatMul",
    n_inputs=(2, 2),
    args=(Arg("axis_a", int, 1), Arg("axis_b", int, 1), Arg("trans_a", bool, False), Arg("trans_b", bool, False)),
)
def matmul(a: torch.Tensor, b: torch.Tensor, *, axis_a: int, axis_b: int, trans_a: bool, trans_b: bool) -> tuple[torch.Tensor]:
    """A and B flattened to matrices at ``axis_a`` / ``axis_b``, optionally transposed, multiplied."""
    a2 = _as_matrix("MatMul", "A", a, axis_a)
    b2 = _as_matrix("MatMul", "B", b, axis_b)
    a2 = a2.t() if trans_a else a2
    b2 = b2.t() if trans_b else b2
    if a2.shape[1] != b2.shape[0]:
        raise OperatorInputError(f"MatMul: A shape={tuple(a.shape)}, B shape={tuple(b.shape)}: inner dims {a2.shape[1]} != {b2.shape[0]}")
    return (a2 @ b2,)


@register_op(
    "BatchMatMul",
    n_inputs=(2, 2),
    args=(Arg("trans_a", bool, False), Arg("trans_b", bool, False), Arg("broadcast", bool, False), Arg("use_scratch", bool, False)),
)
def batch_matmul(a: torch.Tensor, b: torch.Tensor, *, trans_a: bool, trans_b: bool, broadcast: bool, use_scratch: bool) -> tuple[torch.Tensor]:
    """Matrix product over the last two dims; ``broadcast=1`` follows numpy.matmul (1-D operands, batch broadcasting)."""
    check_tensor("BatchMatMul", "A", a)
    check_tensor("BatchMatMul", "B", b)
    if not broadcast and (a.dim() < 2 or a.dim() != b.dim() or a.shape[:-2] != b.shape[:-2]):
        raise OperatorInputError(
            f"BatchMatMul: A shape={tuple(a.shape)}, B shape={tuple(b.shape)}, expected equal batch dims (or broadcast=1)"
        )
    a = a.transpose(-1, -2) if trans_a and a.dim() >= 2 else a
    b = b.transpose(-1, -2) if trans_b and b.dim() >= 2 else b
    return (torch.matmul(a, b),)
