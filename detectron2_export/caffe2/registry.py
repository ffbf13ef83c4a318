"""The Caffe2 operator registry: one Python function per op type.

An op is registered with the arguments it accepts (name, type, default, validity check), and how
many inputs and outputs it takes. The executor decodes an ``OperatorDef``'s arguments into Python
values, ``bind_args`` checks them against the spec, and the op function is called as
``fn(*input_tensors, **bound_args) -> tuple[Tensor, ...]``. The function returns every output it
can compute (optional outputs included); the executor keeps as many as the OperatorDef names.

Adding an op is adding one decorated function (in ``caffe2/ops/<family>.py``) and its test.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..errors import OperatorArgumentError, UnknownOperatorError

REQUIRED: Any = object()
"""Marker default: the argument must be given in the OperatorDef."""


def _always(_value: Any) -> bool:
    return True


@dataclass(frozen=True)
class Arg:
    """One accepted OperatorDef argument.

    ``type`` is one of ``int``, ``float``, ``str``, ``bool``, ``bytes``, ``list`` (a list of ints,
    floats or strings as stored), ``np.ndarray`` (a repeated ``floats``/``ints`` field decoded straight
    to a float32/int64 array, for arguments holding millions of values), or ``object`` (passed through as decoded, e.g. a nested NetDef or
    TensorProto converted by the executor).
    """

    name: str
    type: type
    default: Any = REQUIRED
    valid: Callable[[Any], bool] = _always
    expected: str = "a valid value"


@dataclass(frozen=True)
class OpSpec:
    op_type: str
    fn: Callable[..., tuple]
    args: tuple[Arg, ...] = ()
    n_inputs: tuple[int, int] = (1, 1)
    """Inclusive (min, max) number of inputs; max -1 means unbounded."""
    n_outputs: tuple[int, int] = (1, 1)
    """Inclusive (min, max) number of outputs an OperatorDef may name; max -1 means unbounded."""
    ignored_args: frozenset[str] = field(default_factory=frozenset)
    """Arguments Caffe2 accepts but that do not change the result here (e.g. ``engine`` hints)."""
    contiguous_inputs: tuple[int, ...] = ()
    """Inputs the kernel reads as row-major tensors (see ``layout.py``): the executor converts a
    channels-last blob once and stores the copy back, so later readers share it."""

    @functools.cached_property
    def array_args(self) -> frozenset[str]:
        """Names of the ``np.ndarray`` arguments, decoded without Python lists."""
        return frozenset(a.name for a in self.args if a.type is np.ndarray)


_OPS: dict[str, OpSpec] = {}

# Arguments any Caffe2 operator may carry without effect on CPU results.
COMMON_IGNORED_ARGS = frozenset({"order_hint", "exhaustive_search", "ws_nbytes_limit", "shared_buffer", "used_by_backward"})


def register_op(
    op_type: str,
    *,
    args: tuple[Arg, ...] = (),
    n_inputs: tuple[int, int] = (1, 1),
    n_outputs: tuple[int, int] = (1, 1),
    ignored_args: tuple[str, ...] = (),
    contiguous_inputs: tuple[int, ...] = (),
) -> Callable[[Callable[..., tuple]], Callable[..., tuple]]:
    """Decorator registering ``fn`` as the implementation of Caffe2 op ``op_type``."""

    def deco(fn: Callable[..., tuple]) -> Callable[..., tuple]:
        if op_type in _OPS:
            raise ValueError(
                f"Caffe2 op {op_type!r} registered twice: {_OPS[op_type].fn.__module__} and {fn.__module__}"
            )
        _OPS[op_type] = OpSpec(
            op_type, fn, tuple(args), n_inputs, n_outputs, frozenset(ignored_args), tuple(contiguous_inputs)
        )
        return fn

    return deco


def _ensure_ops_imported() -> None:
    # The op modules register themselves on import; import them lazily to avoid cycles.
    from . import ops  # noqa: F401


def get_op(op_type: str) -> OpSpec:
    _ensure_ops_imported()
    spec = _OPS.get(op_type)
    if spec is None:
        raise UnknownOperatorError(
            f"Caffe2 op type {op_type!r} is not implemented by this runtime; known types: {sorted(_OPS)}"
        )
    return spec


def registered_ops() -> list[str]:
    _ensure_ops_imported()
    return sorted(_OPS)


def _coerce(op_type: str, arg: Arg, value: Any) -> Any:
    t = arg.type
    try:
        if t is bool:
            if isinstance(value, (bool, int)) and int(value) in (0, 1):
                return bool(value)
            raise TypeError
        if t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    return int(value)
                raise TypeError
            return value
        if t is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
            raise TypeError
        if t is str:
            if isinstance(value, bytes):
                return value.decode("utf-8")
            if isinstance(value, str):
                return value
            raise TypeError
        if t is bytes:
            if isinstance(value, str):
                return value.encode("utf-8")
            if isinstance(value, bytes):
                return value
            raise TypeError
        if t is list:
            if isinstance(value, (list, tuple)):
                return list(value)
            raise TypeError
        if t is np.ndarray:
            if isinstance(value, (list, tuple, np.ndarray)):
                return np.asarray(value)
            raise TypeError
        return value
    except (TypeError, ValueError, UnicodeDecodeError):
        raise OperatorArgumentError(
            f"{op_type}: {arg.name}={value!r}, expected {t.__name__} ({arg.expected})"
        ) from None


def bind_args(spec: OpSpec, given: dict[str, Any]) -> dict[str, Any]:
    """Decoded OperatorDef arguments -> validated keyword arguments for ``spec.fn``."""
    accepted = {a.name for a in spec.args}
    extra = sorted(given.keys() - accepted - spec.ignored_args - COMMON_IGNORED_ARGS)
    if extra:
        raise OperatorArgumentError(
            f"{spec.op_type}: unknown argument(s) {extra}; accepts {sorted(accepted)}"
        )
    bound: dict[str, Any] = {}
    for a in spec.args:
        value = given.get(a.name, a.default)
        if value is REQUIRED:
            raise OperatorArgumentError(f"{spec.op_type}: missing required argument {a.name!r}")
        if a.name in given:
            value = _coerce(spec.op_type, a, value)
        if not a.valid(value):
            raise OperatorArgumentError(f"{spec.op_type}: {a.name}={value!r}, expected {a.expected}")
        bound[a.name] = value
    return bound
