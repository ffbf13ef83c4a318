"""Small pieces shared by the Caffe2-compatible rewrite: blob aliases, device copies and the
``interpolate`` replacement used while exporting to ONNX (SPEC 3.9, 3.11, 5.14)."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable
from unittest import mock

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


def _ensure_caffe2_ops() -> None:
    from ..caffe2 import library  # noqa: F401  (registers torch.ops._caffe2.*)


def alias(x: torch.Tensor, name: str, is_backward: bool = False) -> torch.Tensor:
    """Name a tensor in the exported net. Identity except while exporting to ONNX, where it becomes
    an ``AliasWithName`` node that the ``fuse_alias_placeholder`` pass turns into a blob rename."""
    if not torch.onnx.is_in_onnx_export():
        return x
    _ensure_caffe2_ops()
    assert isinstance(x, torch.Tensor)
    return torch.ops._caffe2.AliasWithName(x, name, is_backward=is_backward)


def to_device(t: torch.Tensor, device_str: str) -> torch.Tensor:
    """Move ``t`` with the Caffe2 copy ops so the move shows up as ``CopyCPUToGPU``/``CopyGPUToCPU``."""
    src = t.device
    dst = torch.device(device_str)
    if src == dst:
        return t
    _ensure_caffe2_ops()
    if src.type == "cuda" and dst.type == "cpu":
        return torch.ops._caffe2.CopyGPUToCPU(t)
    if src.type == "cpu" and dst.type == "cuda":
        return torch.ops._caffe2.CopyCPUToGPU(t)
    raise RuntimeError(f"to_device: cannot move a tensor from {src} to {dst} with Caffe2 copy ops")


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
        else:
            assert isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2
            height_scale, width_scale = float(scale_factor[0]), float(scale_factor[1])
        assert not align_corners, "No matching C2 op for align_corners == True"
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
