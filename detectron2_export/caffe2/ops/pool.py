"""MaxPool and AveragePool (SPEC 5.15), NCHW, floor-mode output size.

Padding never wins a max and, unless ``count_include_pad=1``, is not counted in an average (Caffe2's
defaults); ``global_pooling=1`` pools all spatial positions.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ...errors import OperatorArgumentError, OperatorInputError
from ..conv_pool_args import Geometry, geometry_args, resolve_geometry
from ..op_args import check_rank
from ..registry import Arg, register_op

_MAX_FN = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}
_AVG_FN = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}
_POOL_ARGS = (*geometry_args("kernel", "stride", "pad", "dilation"), Arg("global_pooling", bool, False))
_IGNORED = ("cudnn_exhaustive_search", "deterministic")


def _geometry(op_type: str, x: torch.Tensor, global_pooling: bool, geometry: dict[str, Any]) -> Geometry | None:
    check_rank(op_type, "X", x, (3, 4, 5))
    geo = resolve_geometry(op_type, x.dim() - 2, geometry)
    if global_pooling:
        return None
    if geo.kernel is None:
        raise OperatorArgumentError(f"{op_type}: no kernel/kernels argument, expected one unless global_pooling=1")
    if geo.dilation != [1] * len(geo.kernel):
        raise OperatorArgumentError(f"{op_type}: dilations={geo.dilation}, expected all 1")
    for size, k, pb, pe in zip(x.shape[2:], geo.kernel, geo.pad_begin, geo.pad_end):
        if size + pb + pe < k:
            raise OperatorInputError(f"{op_type}: X shape={tuple(x.shape)} with pads {geo.pad_begin + geo.pad_end} is smaller than kernel {geo.kernel}")
    return geo


def _torch_can_pad(geo: Geometry) -> bool:
    return geo.symmetric_pads and all(p <= k // 2 for p, k in zip(geo.pad_begin, geo.kernel or []))


@register_op("MaxPool", args=_POOL_ARGS, ignored_args=_IGNORED)
def max_pool(x: torch.Tensor, *, global_pooling: bool, **geometry: Any) -> tuple[torch.Tensor]:
    """Max over each window; padded positions never win."""
    geo = _geometry("MaxPool", x, global_pooling, geometry)
    if geo is None:
        return (x.amax(dim=tuple(range(2, x.dim())), keepdim=True),)
    fn = _MAX_FN[x.dim() - 2]
    if _torch_can_pad(geo):
        return (fn(x, geo.kernel, geo.stride, geo.pad_begin),)
    return (fn(F.pad(x, geo.torch_pad(), value=-math.inf), geo.kernel, geo.stride),)


@register_op("AveragePool", args=(*_POOL_ARGS, Arg("count_include_pad", bool, False)), ignored_args=_IGNORED)
def average_pool(x: torch.Tensor, *, global_pooling: bool, count_include_pad: bool, **geometry: Any) -> tuple[torch.Tensor]:
    """Mean over each window, counting padded positions only if ``count_include_pad``."""
    geo = _geometry("AveragePool", x, global_pooling, geometry)
    if geo is None:
        return (x.mean(dim=tuple(range(2, x.dim())), keepdim=True),)
    fn = _AVG_FN[x.dim() - 2]
    if _torch_can_pad(geo):
        return (fn(x, geo.kernel, geo.stride, geo.pad_begin, count_include_pad=count_include_pad),)
    padded = fn(F.pad(x, geo.torch_pad()), geo.kernel, geo.stride)
    if count_include_pad:
        return (padded,)
    valid = F.pad(torch.ones_like(x[:1, :1]), geo.torch_pad())
    return (padded / fn(valid, geo.kernel, geo.stride),)
