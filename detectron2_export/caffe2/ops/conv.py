"""Conv and ConvTranspose (SPEC 5.15): NCHW cross-correlation with zero padding, any pads (t, l, b, r)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...errors import OperatorInputError
from ..conv_pool_args import Geometry, geometry_args, resolve_geometry
from ..op_args import check_allocation, check_rank
from ..registry import Arg, register_op

_CONV_FN = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
_GROUP = Arg("group", int, 1, lambda v: v >= 1, "an int >= 1")
_IGNORED = ("float16_compute", "cudnn_exhaustive_search", "training_mode", "is_test")


def _check_inputs(op_type: str, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> int:
    check_rank(op_type, "X", x, (3, 4, 5))
    check_rank(op_type, "filter", w, (x.dim(),))
    if b is not None:
        check_rank(op_type, "bias", b, (1,))
    return x.dim() - 2


def _check_kernel(op_type: str, geo: Geometry, w: torch.Tensor) -> None:
    if geo.kernel is not None and list(w.shape[2:]) != geo.kernel:
        raise OperatorInputError(f"{op_type}: filter shape={tuple(w.shape)}, expected spatial dims {geo.kernel} (kernels)")


def _check_bias(op_type: str, b: torch.Tensor | None, n_out: int) -> None:
    if b is not None and b.shape[0] != n_out:
        raise OperatorInputError(f"{op_type}: bias shape={tuple(b.shape)}, expected ({n_out},)")


def _check_conv_sizes(x: torch.Tensor, w: torch.Tensor, geo: Geometry) -> None:
    """Refuse, before allocating, pads or strides that make the padded input or the output too big."""
    padded = [int(s) + pb + pe for s, pb, pe in zip(x.shape[2:], geo.pad_begin, geo.pad_end)]
    if not geo.symmetric_pads:
        check_allocation("Conv", "padded X", [*x.shape[:2], *padded], x.dtype)
    out = [
        max((p - d * (k - 1) - 1) // st + 1, 0)
        for p, d, k, st in zip(padded, geo.dilation, w.shape[2:], geo.stride)
    ]
    check_allocation("Conv", "output", [x.shape[0], w.shape[0], *out], x.dtype)


@register_op("Conv", n_inputs=(2, 3), args=(*geometry_args("kernel", "stride", "pad", "dilation"), _GROUP), ignored_args=_IGNORED)
def conv(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, *, group: int, **geometry: Any) -> tuple[torch.Tensor]:
    """X (N, C, *S), filter (M, C/group, *K), bias (M) -> (N, M, *S')."""
    nd = _check_inputs("Conv", x, w, b)
    geo = resolve_geometry("Conv", nd, geometry)
    _check_kernel("Conv", geo, w)
    if x.shape[1] != w.shape[1] * group or w.shape[0] % group:
        raise OperatorInputError(
            f"Conv: X shape={tuple(x.shape)}, filter shape={tuple(w.shape)}, group={group}: expected "
            f"X channels = filter dim 1 * group and filter dim 0 divisible by group"
        )
    _check_bias("Conv", b, w.shape[0])
    _check_conv_sizes(x, w, geo)
    if geo.symmetric_pads:
        return (_CONV_FN[nd](x, w, b, geo.stride, geo.pad_begin, geo.dilation, group),)
    return (_CONV_FN[nd](F.pad(x, geo.torch_pad()), w, b, geo.stride, 0, geo.dilation, group),)


@register_op(
    "ConvTranspose", n_inputs=(2, 3), args=(*geometry_args("kernel", "stride", "pad", "adj"), _GROUP), ignored_args=_IGNORED
)
def conv_transpose(
    x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None, *, group: int, **geometry: Any
) -> tuple[torch.Tensor]:
    """X (N, C, *S), filter (C, M/group, *K), bias (M) -> (N, M, *S'), S' = (S-1)*stride - pad_b - pad_e + K + adj."""
    nd = _check_inputs("ConvTranspose", x, w, b)
    geo = resolve_geometry("ConvTranspose", nd, geometry)
    _check_kernel("ConvTranspose", geo, w)
    if x.shape[1] != w.shape[0] or w.shape[0] % group:
        raise OperatorInputError(
            f"ConvTranspose: X shape={tuple(x.shape)}, filter shape={tuple(w.shape)}, group={group}: expected "
            "X channels = filter dim 0, divisible by group"
        )
    _check_bias("ConvTranspose", b, w.shape[1] * group)
    if any(a >= s for a, s in zip(geo.adj, geo.stride)):
        raise OperatorInputError(f"ConvTranspose: adjs={geo.adj}, expected each < its stride {geo.stride}")
    if not any(geo.pad_begin) and not any(geo.pad_end) and not any(geo.adj):
        # Nothing to crop or append: one call (bias fused), bitwise equal to the general path below.
        return (_CONV_T_FN[nd](x, w, b, geo.stride, 0, 0, group),)
    full = _CONV_T_FN[nd](x, w, None, geo.stride, 0, 0, group)
    # Crop pad_begin / pad_end and append adj zero rows at the end of each spatial dim.
    crop: list[int] = []
    for pb, pe, a in zip(reversed(geo.pad_begin), reversed(geo.pad_end), reversed(geo.adj)):
        crop += [-pb, a - pe]
    y = F.pad(full, crop)
    if any(s <= 0 for s in y.shape[2:]):
        raise OperatorInputError(f"ConvTranspose: output spatial shape={tuple(y.shape[2:])}, expected positive sizes (pads too large)")
    if b is not None:
        y = y + b.reshape(1, -1, *([1] * nd))
    return (y,)
