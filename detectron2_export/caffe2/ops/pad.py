"""PadImage (SPEC 5.15): spatial padding of an NCHW image, pads given as t, l, b, r."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ...errors import OperatorArgumentError, OperatorInputError
from ..conv_pool_args import geometry_args, resolve_geometry
from ..op_args import check_allocation, check_rank
from ..registry import Arg, register_op

_TORCH_MODE = {"constant": "constant", "reflect": "reflect", "edge": "replicate"}


@register_op(
    "PadImage",
    args=(
        *geometry_args("kernel", "stride", "pad"),
        Arg("mode", str, "constant", lambda v: v in _TORCH_MODE, f"one of {sorted(_TORCH_MODE)}"),
        Arg("value", float, 0.0),
    ),
)
def pad_image(x: torch.Tensor, *, mode: str, value: float, **geometry: Any) -> tuple[torch.Tensor]:
    """X (N, C, H, W) -> (N, C, H + t + b, W + l + r); ``reflect`` mirrors without the edge, ``edge`` repeats it."""
    check_rank("PadImage", "X", x, (4,))
    geo = resolve_geometry("PadImage", 2, geometry)
    if geo.kernel not in (None, [1, 1]) or geo.stride != [1, 1]:
        raise OperatorArgumentError(f"PadImage: kernel={geo.kernel}, stride={geo.stride}, expected 1 (padding only)")
    if mode == "reflect" and any(p >= s for p, s in zip(geo.pad_begin + geo.pad_end, list(x.shape[2:]) * 2)):
        raise OperatorInputError(f"PadImage: pads {geo.pad_begin + geo.pad_end} with mode 'reflect', expected each < the padded dim of X shape={tuple(x.shape)}")
    pads = geo.pad_begin + geo.pad_end
    check_allocation(
        "PadImage", "output", (*x.shape[:2], x.shape[2] + pads[0] + pads[2], x.shape[3] + pads[1] + pads[3]), x.dtype
    )
    if mode == "constant":
        return (F.pad(x, geo.torch_pad(), value=value),)
    return (F.pad(x, geo.torch_pad(), mode=_TORCH_MODE[mode]),)
