"""Spatial resizing ops: ``ResizeNearest``, ``UpsampleNearest`` and ``UpsampleBilinear`` (SPEC 5.11).

Scales are Caffe2 floats (float32); output sizes are ``int(size * scale)`` and source indices
``int(dst / scale)``. ``ResizeNearest`` and ``UpsampleBilinear`` accept an optional second input
``scales = [height_scale, width_scale]`` that overrides the arguments (the ONNX ``Upsample`` form).

``UpsampleBilinear`` is Caffe2's: source coordinate ``dst * (in - 1) / (out - 1)``, i.e. PyTorch's
``align_corners=True``, not the ``align_corners=False`` of ``F.interpolate``'s default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import OperatorInputError
from ..op_args import check_allocation
from ..registry import Arg, register_op
from ..arguments import to_float32
from .box_utils import caffe2_torch_ops


def _check_scales(op: str, height_scale: float, width_scale: float) -> None:
    if not (height_scale > 0 and width_scale > 0):
        raise OperatorInputError(
            f"{op}: (height_scale, width_scale)=({height_scale}, {width_scale}), expected positive floats"
        )


def output_size(size: int, scale: float) -> int:
    """Caffe2's ``int(size * scale)`` with a float32 scale."""
    return int(torch.tensor(float(size), dtype=torch.float32) * to_float32(scale))


def _nearest_index(in_size: int, out_size: int, scale: float, device: torch.device) -> Tensor:
    src = torch.arange(out_size, dtype=torch.float32, device=device) / to_float32(scale)
    return src.to(torch.int64).clamp(max=in_size - 1)


def _power_of_two_upscale(in_size: int, out_size: int, scale: float) -> bool:
    """``scale`` is 2**k (k >= 0) and ``out_size == in_size * scale`` exactly."""
    k = int(scale)
    return k == scale and k >= 1 and k & (k - 1) == 0 and out_size == in_size * k


def resize_nearest(X: Tensor, order: str, width_scale: float, height_scale: float) -> Tensor:
    """The kernel of ``_caffe2::ResizeNearest`` (NCHW or NHWC)."""
    if order not in ("NCHW", "NHWC"):
        raise OperatorInputError(f"ResizeNearest: order={order!r}, expected 'NCHW' or 'NHWC'")
    if X.dim() != 4:
        raise OperatorInputError(f"ResizeNearest: X shape={tuple(X.shape)}, expected 4-D ({order})")
    _check_scales("ResizeNearest", height_scale, width_scale)
    h_axis, w_axis = (2, 3) if order == "NCHW" else (1, 2)
    in_h, in_w = X.shape[h_axis], X.shape[w_axis]
    out_h, out_w = output_size(in_h, height_scale), output_size(in_w, width_scale)
    out_shape = list(X.shape)
    out_shape[h_axis], out_shape[w_axis] = out_h, out_w
    check_allocation("ResizeNearest", "output", out_shape, X.dtype)
    fast = _power_of_two_upscale(in_h, out_h, height_scale) and _power_of_two_upscale(in_w, out_w, width_scale)
    if fast and order == "NCHW" and X.dtype.is_floating_point:
        # Same source indices (dst // scale: PyTorch's in/out ratio is exact here) in one fast kernel.
        return F.interpolate(X, size=(out_h, out_w), mode="nearest")
    rows = _nearest_index(in_h, out_h, height_scale, X.device)
    cols = _nearest_index(in_w, out_w, width_scale, X.device)
    return X.index_select(h_axis, rows).index_select(w_axis, cols)


def upsample_nearest(X: Tensor, scale: int) -> Tensor:
    """Caffe2's ``UpsampleNearest``: repeat each of the last two dims' entries ``scale`` times."""
    if X.dim() not in (3, 4):
        raise OperatorInputError(f"UpsampleNearest: X shape={tuple(X.shape)}, expected 3-D or 4-D")
    check_allocation("UpsampleNearest", "output", (*X.shape[:-2], X.shape[-2] * scale, X.shape[-1] * scale), X.dtype)
    return X.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def _bilinear_axis(in_size: int, out_size: int, device: torch.device) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per output index: (low source index, high source index, low weight, high weight)."""
    if out_size > 1:
        ratio = torch.tensor(float(in_size - 1), dtype=torch.float32) / (out_size - 1)
    else:
        ratio = torch.tensor(0.0)
    src = ratio.to(device) * torch.arange(out_size, dtype=torch.float32, device=device)
    low = src.to(torch.int64)
    high = low + (low < in_size - 1).to(torch.int64)
    high_weight = src - low
    return low, high, 1.0 - high_weight, high_weight


def upsample_bilinear(X: Tensor, width_scale: float, height_scale: float) -> Tensor:
    """Caffe2's ``UpsampleBilinear`` on NCHW input (corner-aligned interpolation)."""
    if X.dim() != 4:
        raise OperatorInputError(f"UpsampleBilinear: X shape={tuple(X.shape)}, expected 4-D (NCHW)")
    _check_scales("UpsampleBilinear", height_scale, width_scale)
    in_h, in_w = X.shape[2], X.shape[3]
    out_h, out_w = output_size(in_h, height_scale), output_size(in_w, width_scale)
    check_allocation("UpsampleBilinear", "output", (*X.shape[:2], out_h, out_w), X.dtype)
    h_low, h_high, h0, h1 = _bilinear_axis(in_h, out_h, X.device)
    w_low, w_high, w0, w1 = _bilinear_axis(in_w, out_w, X.device)
    top, bottom = X.index_select(2, h_low), X.index_select(2, h_high)
    h0, h1 = h0.to(X.dtype).view(-1, 1), h1.to(X.dtype).view(-1, 1)
    w0, w1 = w0.to(X.dtype), w1.to(X.dtype)
    return h0 * (w0 * top.index_select(3, w_low) + w1 * top.index_select(3, w_high)) + h1 * (
        w0 * bottom.index_select(3, w_low) + w1 * bottom.index_select(3, w_high)
    )


def _scales_from_input(op: str, scales: tuple[Tensor, ...], width_scale: float, height_scale: float):
    if not scales:
        return width_scale, height_scale
    values = scales[0]
    if values.dim() != 1 or values.numel() != 2:
        raise OperatorInputError(
            f"{op}: scales shape={tuple(values.shape)}, expected (2,) = [height_scale, width_scale]"
        )
    height, width = (float(v) for v in values.to(torch.float32).tolist())
    return width, height


_SCALE_ARGS = (
    Arg("width_scale", float, 1.0, lambda v: v > 0, "a positive float"),
    Arg("height_scale", float, 1.0, lambda v: v > 0, "a positive float"),
)


@register_op(
    "ResizeNearest",
    n_inputs=(1, 2),
    args=_SCALE_ARGS + (Arg("order", str, "NCHW", lambda v: v in ("NCHW", "NHWC"), "'NCHW' or 'NHWC'"),),
)
def resize_nearest_op(X: Tensor, *scales: Tensor, width_scale: float, height_scale: float, order: str) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.ResizeNearest``; a ``scales`` input overrides the args."""
    width_scale, height_scale = _scales_from_input("ResizeNearest", scales, width_scale, height_scale)
    return (caffe2_torch_ops().ResizeNearest(X, order, width_scale, height_scale),)


@register_op("UpsampleNearest", args=(Arg("scale", int, 2, lambda v: v >= 1, "an int >= 1"),))
def upsample_nearest_op(X: Tensor, *, scale: int) -> tuple[Tensor]:
    return (upsample_nearest(X, scale),)


@register_op("UpsampleBilinear", n_inputs=(1, 2), args=_SCALE_ARGS)
def upsample_bilinear_op(X: Tensor, *scales: Tensor, width_scale: float, height_scale: float) -> tuple[Tensor]:
    width_scale, height_scale = _scales_from_input("UpsampleBilinear", scales, width_scale, height_scale)
    return (upsample_bilinear(X, width_scale, height_scale),)
