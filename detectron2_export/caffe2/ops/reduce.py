"""Reductions over listed axes (SPEC 5.15 ReduceMean; ReduceSum/Max/Min share the rule)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..op_args import check_tensor, int_list, named_op, normalize_axis
from ..registry import Arg, register_op


def _reduce(op_type: str, fn: Callable[..., torch.Tensor], doc: str) -> Callable:
    @register_op(op_type, args=(int_list("axes", None), Arg("keepdims", bool, True)))
    def op(x: torch.Tensor, *, axes: list[int] | None, keepdims: bool) -> tuple[torch.Tensor]:
        check_tensor(op_type, "X", x)
        dims = tuple(range(x.dim())) if axes is None else tuple(sorted({normalize_axis(op_type, a, x.dim()) for a in axes}))
        if not dims:
            return (x.clone(),)
        return (fn(x, dim=dims, keepdim=keepdims),)

    return named_op(op, op_type, doc)


ReduceMean = _reduce("ReduceMean", torch.mean, "Mean over ``axes`` (default: all), keeping them as size 1 if ``keepdims``.")
ReduceSum = _reduce("ReduceSum", torch.sum, "Sum over ``axes`` (default: all), keeping them as size 1 if ``keepdims``.")
ReduceMax = _reduce("ReduceMax", torch.amax, "Max over ``axes`` (default: all), keeping them as size 1 if ``keepdims``.")
ReduceMin = _reduce("ReduceMin", torch.amin, "Min over ``axes`` (default: all), keeping them as size 1 if ``keepdims``.")
