"""The ``F.interpolate`` replacement active while the Caffe2 meta-architectures export to ONNX:
nearest upsampling by a scale becomes Caffe2's ``ResizeNearest`` (SPEC 3.11, 5.14)."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable
from unittest import mock

import torch
import torch.nn.functional as F

from ..errors import ExportAssertionError
from .caffe2_graph_ops import _ensure_caffe2_ops

logger = logging.getLogger(__name__)


def onnx_compatible_interpolate(
    input: torch.Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """``F.interpolate`` replacement active during ONNX export of the Caffe2 meta-architectures:
    nearest upsampling by a scale becomes ``ResizeNearest`` (SPEC 3.11)."""
    if size is None and scale_factor is not None and input.dim() == 4:
        if isinstance(scale_factor, (int, float)):
            height_scale, width_scale = float(scale_factor), float(scale_factor)
        elif isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2:
            height_scale, width_scale = float(scale_factor[0]), float(scale_factor[1])
        else:
            raise ExportAssertionError(
                f"interpolate: scale_factor={scale_factor!r}, expected a number or a (height, width) pair"
            )
        if align_corners:
            raise ExportAssertionError("interpolate: No matching C2 op for align_corners == True")
        if mode == "nearest":
            _ensure_caffe2_ops()
            return torch.ops._caffe2.ResizeNearest(
                input, order="NCHW", width_scale=width_scale, height_scale=height_scale
            )
        # Bilinear is left to ONNX Resize, which the converter turns into an exact bilinear
        # upsampling. Upstream substituted a ConvTranspose with a fixed kernel here, whose border
        # rows differ from F.interpolate; through PanopticFPN's GroupNorm that changed 3-4% of the
        # panoptic pixels.
        if mode == "bilinear":
            return _ORIGINAL_INTERPOLATE(input, size, scale_factor, mode, align_corners, **kwargs)
    if size is None and scale_factor is not None:
        logger.warning("Output size is not static, it might cause ONNX conversion issue")
    return _ORIGINAL_INTERPOLATE(input, size, scale_factor, mode, align_corners, **kwargs)


_ORIGINAL_INTERPOLATE = F.interpolate


@contextlib.contextmanager
def _interpolate_replaced_during_onnx_export():
    if torch.onnx.is_in_onnx_export():
        with mock.patch("torch.nn.functional.interpolate", side_effect=onnx_compatible_interpolate):
            yield
    else:
        yield


def mock_torch_nn_functional_interpolate() -> Callable:
    """Decorator for the meta-architectures' ``forward`` (SPEC 3.11)."""

    def deco(func: Callable) -> Callable:
        @functools.wraps(func)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with _interpolate_replaced_during_onnx_export():
                return func(*args, **kwargs)

        return wrapped

    return deco
