"""Copy ops (SPEC 5.14): identities on values; the device copies move tensors where a GPU exists.

An identity may return its input tensor itself: op kernels never modify their inputs, and in-place
execution (``inplace.py``) never overwrites the output of an op that may return its input.
"""

from __future__ import annotations

import torch

from ..op_args import check_tensor
from ..registry import register_op


@register_op("Copy")
def copy(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X."""
    return (x,)


@register_op("Alias")
def alias(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y shares X's data."""
    return (x,)


@register_op("StopGradient")
def stop_gradient(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X (gradients are irrelevant at inference)."""
    return (x,)


@register_op("EnsureCPUOutput")
def ensure_cpu_output(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X on the CPU."""
    check_tensor("EnsureCPUOutput", "X", x)
    return (x.cpu(),)


@register_op("CopyGPUToCPU")
def copy_gpu_to_cpu(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X on the CPU."""
    check_tensor("CopyGPUToCPU", "X", x)
    return (x.cpu(),)


@register_op("CopyCPUToGPU")
def copy_cpu_to_gpu(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X on the current CUDA device, or X itself where no GPU is available."""
    check_tensor("CopyCPUToGPU", "X", x)
    return (x.cuda() if torch.cuda.is_available() else x,)


@register_op("CopyFromCPUInput")
def copy_from_cpu_input(x: torch.Tensor) -> tuple[torch.Tensor]:
    """Y = X (a CPU input copied to the op's device, CPU here)."""
    return (x,)
