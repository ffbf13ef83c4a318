"""Reusable ``Arg`` declarations, input checks and op-factory naming shared by the op modules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..errors import OperatorInputError
from .registry import REQUIRED, Arg


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_list(name: str, default: Any = REQUIRED, *, min_value: int | None = None) -> Arg:
    """A repeated-int argument (``ints``), optionally with a lower bound on every element."""

    def valid(v: Any) -> bool:
        if v is None:  # only reachable as a default: "not given"
            return True
        return isinstance(v, list) and all(_is_int(x) and (min_value is None or x >= min_value) for x in v)

    bound = "" if min_value is None else f" >= {min_value}"
    return Arg(name, list, default, valid, f"a list of ints{bound}")


def order_arg() -> Arg:
    """``order``: only NCHW, the layout detectron2 exports use."""
    return Arg("order", str, "NCHW", lambda v: v == "NCHW", "'NCHW' (NHWC is not supported)")


def number_arg(name: str, default: Any = REQUIRED) -> Arg:
    """A scalar that may be stored as ``i`` or ``f``; kept as given (int stays int)."""
    return Arg(name, object, default, lambda v: v is None or _is_number(v), "a number")


# Rotated-box decoding and clipping arguments, and the +1 box-size convention: BBoxTransform and
# GenerateProposals take them with the same meaning and defaults.
BOX_DECODE_ARGS = (
    Arg("angle_bound_on", bool, True),
    Arg("angle_bound_lo", int, -90),
    Arg("angle_bound_hi", int, 90),
    Arg("clip_angle_thresh", float, 1.0),
    Arg("legacy_plus_one", bool, True),
)


def named_op(fn: Callable, op_type: str, doc: str) -> Callable:
    """Give an op made by a factory closure the op's own name and docstring (for reprs and docs)."""
    fn.__name__ = fn.__qualname__ = op_type
    fn.__doc__ = doc
    return fn


def check_rank(op_type: str, name: str, x: torch.Tensor, ranks: tuple[int, ...]) -> None:
    """Raise OperatorInputError unless ``x.dim()`` is one of ``ranks``."""
    if not isinstance(x, torch.Tensor):
        raise OperatorInputError(f"{op_type}: {name} is a {type(x).__name__}, expected a tensor")
    if x.dim() not in ranks:
        expected = " or ".join(f"{r}-D" for r in ranks)
        raise OperatorInputError(f"{op_type}: {name} shape={tuple(x.shape)}, expected {expected}")


def check_tensor(op_type: str, name: str, x: Any) -> None:
    if not isinstance(x, torch.Tensor):
        raise OperatorInputError(f"{op_type}: {name} is a {type(x).__name__}, expected a tensor")


def normalize_axis(op_type: str, axis: int, ndim: int, *, allow_end: bool = False) -> int:
    """Python-style negative axis -> non-negative; ``allow_end`` admits ``ndim`` itself (insertion point)."""
    hi = ndim + 1 if allow_end else ndim
    a = axis + hi if axis < 0 else axis
    if not 0 <= a < hi:
        raise OperatorInputError(f"{op_type}: axis={axis}, expected in [{-hi}, {hi - 1}] for a {ndim}-D input")
    return a
