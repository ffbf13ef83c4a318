"""Element-wise ops (SPEC 5.15): binary arithmetic and comparisons with Caffe2's broadcast arguments,
unary math, Sum/Max/Min, LeakyRelu, Pow, Clip, Scale, Softmax and Dropout (inference).

Binary ops: ``broadcast=0`` is NumPy multidirectional broadcasting; ``broadcast=1`` is Caffe2's legacy
rule: B's shape (ignoring its leading and trailing 1s) must equal a contiguous block of A's dims
starting at ``axis`` (default: B aligned to A's suffix), and the result has A's shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from ...errors import OperatorInputError
from ..op_args import check_tensor, named_op, normalize_axis, number_arg
from ..registry import Arg, register_op

_BROADCAST_ARGS = (
    Arg("broadcast", bool, False),
    Arg("axis", int, -1),
    Arg("axis_str", str, "", lambda v: v == "", "'' (named axes are not supported)"),
    Arg("order", str, "NCHW", lambda v: v == "NCHW", "'NCHW'"),
)


def legacy_broadcast(op_type: str, a: torch.Tensor, b: torch.Tensor, axis: int) -> torch.Tensor:
    """B reshaped so that plain broadcasting against A implements Caffe2's ``broadcast=1`` rule."""
    if b.dim() > a.dim():
        raise OperatorInputError(f"{op_type}: B shape={tuple(b.shape)} has more dims than A shape={tuple(a.shape)}, expected at most as many with broadcast=1")
    if axis == -1:
        axis = a.dim() - b.dim()
    if not 0 <= axis <= a.dim() - b.dim():
        raise OperatorInputError(f"{op_type}: axis={axis}, expected in [0, {a.dim() - b.dim()}] for A shape={tuple(a.shape)}, B shape={tuple(b.shape)}")
    dims = list(b.shape)
    start = next((i for i, d in enumerate(dims) if d != 1), len(dims))
    end = next((i for i in range(len(dims) - 1, -1, -1) if dims[i] != 1), -1)
    for i in range(start, end + 1):
        if dims[i] != a.shape[axis + i]:
            raise OperatorInputError(
                f"{op_type}: B shape={tuple(b.shape)} does not match A shape={tuple(a.shape)} at axis {axis} (broadcast=1)"
            )
    return b.reshape([1] * axis + dims + [1] * (a.dim() - axis - b.dim()))


def _binary(op_type: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], doc: str) -> Callable:
    @register_op(op_type, n_inputs=(2, 2), args=_BROADCAST_ARGS)
    def op(a: torch.Tensor, b: torch.Tensor, *, broadcast: bool, axis: int, axis_str: str, order: str) -> tuple[torch.Tensor]:
        if broadcast:
            check_tensor(op_type, "B", b)
            b = legacy_broadcast(op_type, a, b, axis)
        return (fn(a, b),)

    return named_op(op, op_type, doc)


def _divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point or b.dtype.is_floating_point:
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")  # C++ integer division


Add = _binary("Add", torch.add, "A + B.")
Sub = _binary("Sub", torch.sub, "A - B.")
Mul = _binary("Mul", torch.mul, "A * B.")
Div = _binary("Div", _divide, "A / B (integers: truncated toward zero, as C++).")
EQ = _binary("EQ", torch.eq, "A == B (bool).")
NE = _binary("NE", torch.ne, "A != B (bool).")
LT = _binary("LT", torch.lt, "A < B (bool).")
LE = _binary("LE", torch.le, "A <= B (bool).")
GT = _binary("GT", torch.gt, "A > B (bool).")
GE = _binary("GE", torch.ge, "A >= B (bool).")
And = _binary("And", torch.logical_and, "A and B (bool).")
Or = _binary("Or", torch.logical_or, "A or B (bool).")
Xor = _binary("Xor", torch.logical_xor, "A xor B (bool).")


def _unary(op_type: str, fn: Callable[[torch.Tensor], torch.Tensor], doc: str) -> Callable:
    @register_op(op_type)
    def op(x: torch.Tensor) -> tuple[torch.Tensor]:
        return (fn(x),)

    return named_op(op, op_type, doc)


Relu = _unary("Relu", torch.relu, "max(X, 0).")
Sigmoid = _unary("Sigmoid", torch.sigmoid, "1 / (1 + exp(-X)).")
Tanh = _unary("Tanh", torch.tanh, "tanh(X).")
Exp = _unary("Exp", torch.exp, "exp(X).")
Log = _unary("Log", torch.log, "natural log of X.")
Sqrt = _unary("Sqrt", torch.sqrt, "square root of X.")
Sqr = _unary("Sqr", torch.square, "X * X.")
Negative = _unary("Negative", torch.neg, "-X.")
Abs = _unary("Abs", torch.abs, "|X|.")
Not = _unary("Not", torch.logical_not, "logical not of X (bool).")
Reciprocal = _unary("Reciprocal", torch.reciprocal, "1 / X.")
Floor = _unary("Floor", torch.floor, "floor(X).")
Ceil = _unary("Ceil", torch.ceil, "ceil(X).")
Sign = _unary("Sign", torch.sign, "sign(X).")


def _variadic(op_type: str, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], doc: str) -> Callable:
    @register_op(op_type, n_inputs=(1, -1))
    def op(*xs: torch.Tensor) -> tuple[torch.Tensor]:
        check_tensor(op_type, "input 0", xs[0])
        out = xs[0]
        for i, x in enumerate(xs[1:], 1):
            check_tensor(op_type, f"input {i}", x)
            if x.shape != xs[0].shape:
                raise OperatorInputError(f"{op_type}: input {i} shape={tuple(x.shape)}, expected {tuple(xs[0].shape)} like input 0")
            out = fn(out, x)
        return (out,)

    return named_op(op, op_type, doc)


Sum = _variadic("Sum", torch.add, "Element-wise sum of inputs of one shape.")
Max = _variadic("Max", torch.maximum, "Element-wise max of inputs of one shape.")
Min = _variadic("Min", torch.minimum, "Element-wise min of inputs of one shape.")


@register_op("LeakyRelu", args=(Arg("alpha", float, 0.01),))
def leaky_relu(x: torch.Tensor, *, alpha: float) -> tuple[torch.Tensor]:
    """X where X >= 0, alpha * X elsewhere."""
    return (torch.where(x >= 0, x, x * alpha),)


@register_op("Pow", n_inputs=(1, 2), args=(number_arg("exponent", None), *_BROADCAST_ARGS))
def pow_(
    x: torch.Tensor, e: torch.Tensor | None = None, *, exponent: float | None, broadcast: bool, axis: int, axis_str: str, order: str
) -> tuple[torch.Tensor]:
    """X ** exponent (argument) or X ** E (second input, with the binary broadcast rules)."""
    if (e is None) == (exponent is None):
        raise OperatorInputError(f"Pow: {'both' if e is not None else 'neither'} exponent argument and exponent input given, expected exactly one")
    if e is None:
        return (torch.pow(x, exponent),)
    if broadcast:
        e = legacy_broadcast("Pow", x, e, axis)
    return (torch.pow(x, e),)


@register_op("Clip", args=(number_arg("min", -math.inf), number_arg("max", math.inf)))
def clip(x: torch.Tensor, *, min: float, max: float) -> tuple[torch.Tensor]:  # noqa: A002 - Caffe2's names
    """min(max(X, min), max)."""
    return (torch.clamp(x, min, max),)


@register_op("Scale", args=(Arg("scale", float, 1.0),))
def scale(x: torch.Tensor, *, scale: float) -> tuple[torch.Tensor]:
    """scale * X."""
    return (x * scale,)


@register_op("Softmax", args=(Arg("axis", int, 1),))
def softmax(x: torch.Tensor, *, axis: int) -> tuple[torch.Tensor]:
    """X viewed as (prod(dims[:axis]), prod(dims[axis:])), softmax of each row."""
    check_tensor("Softmax", "X", x)
    a = normalize_axis("Softmax", axis, max(x.dim(), 1))
    rows = math.prod(x.shape[:a])
    return (torch.softmax(x.reshape(rows, -1), dim=1).reshape(x.shape),)


@register_op(
    "Dropout",
    n_outputs=(1, 2),
    args=(Arg("ratio", float, 0.5, lambda v: 0 <= v < 1, "in [0, 1)"), Arg("is_test", bool, False, lambda v: v, "1 (inference only)")),
)
def dropout(x: torch.Tensor, *, ratio: float, is_test: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Identity at test time; the optional mask output is all true."""
    return x, torch.ones_like(x, dtype=torch.bool)
