"""Tensor helpers of the Caffe2-compatible rewrite that appear as ops in the traced graph: blob
names (``AliasWithName``) and device copies (``CopyCPUToGPU``/``CopyGPUToCPU``) (SPEC 3.9)."""

from __future__ import annotations

import torch

from ..errors import ExportAssertionError, ExportError


def _ensure_caffe2_ops() -> None:
    from ..caffe2 import library  # noqa: F401  (registers torch.ops._caffe2.*)


def alias(x: torch.Tensor, name: str, is_backward: bool = False) -> torch.Tensor:
    """Name a tensor in the exported net. Identity except while exporting to ONNX, where it becomes
    an ``AliasWithName`` node that the ``fuse_alias_placeholder`` pass turns into a blob rename."""
    if not torch.onnx.is_in_onnx_export():
        return x
    _ensure_caffe2_ops()
    if not isinstance(x, torch.Tensor):
        raise ExportAssertionError(f"alias({name!r}): got a {type(x).__name__}, expected a tensor")
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
    raise ExportError(f"to_device: cannot move a tensor from {src} to {dst} with Caffe2 copy ops")
