"""Reusable ``Arg`` declarations, input checks, allocation limits and op-factory naming shared by
the op modules."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..errors import OperatorArgumentError, OperatorInputError
from .arguments import is_int
from .registry import REQUIRED, Arg


@dataclass(frozen=True)
class ResourceLimits:
    """Ceilings checked before a tensor whose size a model file chooses is allocated (issue 15).

    A file can claim a tensor far larger than itself (a ``ConstantFill`` shape, a resize scale, a
    pooled size). At load, one tensor may take ``min(max_tensor_bytes, floor_bytes +
    file_size_factor * <bytes of the model's parameters>)``; while running, ``max_tensor_bytes``.
    """

    max_tensor_bytes: int = int(os.environ.get("DETECTRON2_EXPORT_MAX_TENSOR_BYTES", 4 << 30))
    floor_bytes: int = 256 << 20
    file_size_factor: float = 4.0
    max_size_divisibility: int = 4096

    def load_limit(self, model_bytes: int) -> int:
        """Bytes one tensor claimed by a file holding ``model_bytes`` of parameters may take."""
        return min(self.max_tensor_bytes, self.floor_bytes + int(self.file_size_factor * model_bytes))


_LIMITS = [ResourceLimits()]


def resource_limits() -> ResourceLimits:
    return _LIMITS[0]


def set_resource_limits(limits: ResourceLimits) -> ResourceLimits:
    """Install ``limits`` for every later load and run; returns the previous ones."""
    previous, _LIMITS[0] = _LIMITS[0], limits
    return previous


def tensor_nbytes(shape: Sequence[int], dtype: torch.dtype) -> int:
    """Bytes of a tensor of ``shape`` (Python ints: no overflow)."""
    return math.prod(int(d) for d in shape) * dtype.itemsize


def check_allocation(op_type: str, what: str, shape: Sequence[int], dtype: torch.dtype, limit: int | None = None) -> None:
    """Raise OperatorArgumentError before allocating ``what`` of ``shape`` if it is negative or too big."""
    dims = [int(d) for d in shape]
    if any(d < 0 for d in dims):
        raise OperatorArgumentError(f"{op_type}: {what} shape={tuple(dims)}, expected non-negative dims")
    limit = resource_limits().max_tensor_bytes if limit is None else limit
    nbytes = tensor_nbytes(dims, dtype)
    if nbytes > limit:
        raise OperatorArgumentError(
            f"{op_type}: {what} shape={tuple(dims)} {dtype} needs {nbytes} bytes, expected at most {limit} "
            "(ResourceLimits: set_resource_limits or DETECTRON2_EXPORT_MAX_TENSOR_BYTES)"
        )


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def int_list(name: str, default: Any = REQUIRED, *, min_value: int | None = None) -> Arg:
    """A repeated-int argument (``ints``), optionally with a lower bound on every element."""

    def valid(v: Any) -> bool:
        if v is None:  # only reachable as a default: "not given"
            return True
        return isinstance(v, list) and all(is_int(x) and (min_value is None or x >= min_value) for x in v)

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
