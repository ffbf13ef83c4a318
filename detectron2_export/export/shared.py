"""Small pieces shared by the Caffe2-compatible rewrite: blob aliases, device copies and the
``interpolate`` replacement used while exporting to ONNX (SPEC 3.9, 3.11, 5.14)."""

from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable
from unittest import mock

import numpy as np
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


def bilinear_upsample_kernel(channels: int, up_scale: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The fixed (C, C, k, k) transposed-convolution weight upstream substitutes for bilinear x``up_scale``."""
    kernel_size = 2 * up_scale
    factor = (kernel_size + 1) // 2
    center = factor - 1 if kernel_size % 2 == 1 else factor - 0.5
    og = np.ogrid[:kernel_size, :kernel_size]
    filt = (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)
    weight = np.zeros((channels, channels, kernel_size, kernel_size), dtype=np.float32)
    weight[range(channels), range(channels), :, :] = filt
    return torch.from_numpy(weight).to(dtype)


def bilinear_interpolation_via_conv_transpose(x: torch.Tensor, up_scale: int) -> torch.Tensor:
    """Bilinear upsampling as Caffe2 models did it: a depthwise-diagonal ConvTranspose.
    Borders differ slightly from ``F.interpolate(mode="bilinear")``."""
    assert up_scale % 2 == 0, "Scale should be even"
    weight = bilinear_upsample_kernel(x.shape[1], up_scale, x.dtype).to(x.device)
    return F.conv_transpose2d(x, weight, stride=up_scale, padding=int(up_scale / 2))


def onnx_compatible_interpolate(
    input: torch.Tensor,
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """``F.interpolate`` replacement active during ONNX export of the Caffe2 meta-architectures."""
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
        if mode == "bilinear":
            logger.warning(
                "Use F.conv_transpose2d for bilinear interpolate because there's no such C2 op, "
                "this may cause significant numerical mismatch at the borders."
            )
            assert height_scale == width_scale
            return bilinear_interpolation_via_conv_transpose(input, up_scale=int(height_scale))
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
