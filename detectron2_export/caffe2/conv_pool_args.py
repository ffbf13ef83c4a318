"""Kernel / stride / pad / dilation arguments shared by Conv, ConvTranspose, the pools and PadImage.

Caffe2's ConvPoolOpBase accepts each of them in three spellings: one value for every spatial dim
(``kernel``), one per 2-D dim (``kernel_h``, ``kernel_w``; pads ``pad_t``, ``pad_l``, ``pad_b``,
``pad_r``), or the repeated form (``kernels``; ``pads`` = all begins then all ends, i.e. t, l, b, r).
Giving two spellings of one quantity is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import OperatorArgumentError, OperatorInputError
from .op_args import int_list, order_arg
from .registry import Arg

_SPELLINGS = {
    "kernel": ("kernel", ("kernel_h", "kernel_w"), "kernels"),
    "stride": ("stride", ("stride_h", "stride_w"), "strides"),
    "dilation": ("dilation", ("dilation_h", "dilation_w"), "dilations"),
    "adj": ("adj", ("adj_h", "adj_w"), "adjs"),
    "pad": ("pad", ("pad_t", "pad_l", "pad_b", "pad_r"), "pads"),
}
_MIN = {"kernel": 1, "stride": 1, "dilation": 1, "adj": 0, "pad": 0}


def _int_at_least(name: str, lo: int) -> Arg:
    return Arg(name, int, None, lambda v: v is None or v >= lo, f"an int >= {lo}")


def geometry_args(*quantities: str) -> tuple[Arg, ...]:
    """The ``Arg``s for the given quantities ("kernel", "stride", "pad", "dilation", "adj") + ``order``."""
    args: list[Arg] = [order_arg(), Arg("legacy_pad", int, 0, lambda v: v == 0, "0 (NOTSET; legacy padding modes are not supported)")]
    for q in quantities:
        single, per_dim, repeated = _SPELLINGS[q]
        args.append(_int_at_least(single, _MIN[q]))
        args.extend(_int_at_least(name, _MIN[q]) for name in per_dim)
        args.append(int_list(repeated, None, min_value=_MIN[q]))
    return tuple(args)


@dataclass(frozen=True)
class Geometry:
    kernel: list[int] | None
    stride: list[int]
    pad_begin: list[int]
    pad_end: list[int]
    dilation: list[int]
    adj: list[int]

    @property
    def symmetric_pads(self) -> bool:
        return self.pad_begin == self.pad_end

    def torch_pad(self) -> list[int]:
        """``F.pad`` order: last dim first, (begin, end) per dim."""
        out: list[int] = []
        for b, e in zip(reversed(self.pad_begin), reversed(self.pad_end)):
            out += [b, e]
        return out


def _resolve(op_type: str, q: str, nd: int, kw: dict[str, Any], default: list[int] | None) -> list[int] | None:
    single, per_dim, repeated = _SPELLINGS[q]
    if repeated not in kw:  # the op does not take this quantity
        return default
    n = 2 * nd if q == "pad" else nd
    given = [name for name in (single, *per_dim, repeated) if kw.get(name) is not None]
    forms = {single if g == single else repeated if g == repeated else "per_dim" for g in given}
    if len(forms) > 1:
        raise OperatorArgumentError(f"{op_type}: {given} all given, expected one spelling of {q}")
    if kw.get(single) is not None:
        return [kw[single]] * n
    if kw.get(repeated) is not None:
        values = kw[repeated]
        if len(values) != n:
            raise OperatorArgumentError(f"{op_type}: {repeated}={values}, expected {n} values for a {nd}-D {op_type}")
        return list(values)
    if given:
        missing = [name for name in per_dim if kw.get(name) is None]
        if missing or nd != 2:
            raise OperatorArgumentError(
                f"{op_type}: {given} given, expected all of {list(per_dim)} (only for 2-D inputs)"
            )
        return [kw[name] for name in per_dim]
    return default


def resolve_geometry(op_type: str, nd: int, kw: dict[str, Any]) -> Geometry:
    """Bound arguments -> one value per spatial dim (``kernel`` None when not given)."""
    if nd < 1:
        raise OperatorInputError(f"{op_type}: input has {nd} spatial dims, expected at least 1 (N, C, spatial...)")
    ones, zeros = [1] * nd, [0] * nd
    pads = _resolve(op_type, "pad", nd, kw, zeros + zeros)
    return Geometry(
        kernel=_resolve(op_type, "kernel", nd, kw, None),
        stride=_resolve(op_type, "stride", nd, kw, ones),
        pad_begin=pads[:nd],
        pad_end=pads[nd:],
        dilation=_resolve(op_type, "dilation", nd, kw, ones),
        adj=_resolve(op_type, "adj", nd, kw, zeros),
    )

