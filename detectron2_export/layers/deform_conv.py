"""Deformable convolutions (detectron2.layers.deform_conv), on ``torchvision.ops.deform_conv2d``.

detectron2 ships its own CUDA kernels and falls back to torchvision on the CPU; torchvision's
kernel samples with the same bilinear rule (zero outside the image) and reads offsets in the same
layout, ``(N, 2 * deformable_groups * kh * kw, Ho, Wo)`` as (dy, dx) pairs per kernel position,
so one kernel serves both devices here (and traces as ``torchvision::deform_conv2d``).

Both modules keep detectron2's parameter names (``weight``, ``bias``, ``norm.*``), so checkpoints
of DCN models load unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Tuple

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torchvision.ops import deform_conv2d

__all__ = ["DeformConv", "ModulatedDeformConv"]


class _DeformConvBase(nn.Module):
    """What DeformConv and ModulatedDeformConv share: arguments, weight, norm/activation, checks."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        deformable_groups: int = 1,
        bias: bool = True,
        norm: Optional[nn.Module] = None,
        activation: Optional[Callable[[torch.Tensor], torch.Tensor]] = None,
    ):
        super().__init__()
        name = type(self).__name__
        if in_channels % groups != 0 or out_channels % groups != 0:
            raise ValueError(
                f"{name}: in_channels={in_channels}, out_channels={out_channels}, "
                f"expected both divisible by groups={groups}"
            )
        if deformable_groups < 1 or in_channels % deformable_groups != 0:
            raise ValueError(
                f"{name}: deformable_groups={deformable_groups}, expected a divisor of "
                f"in_channels={in_channels}"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = _pair(kernel_size)
        self.stride = _pair(stride)
        self.padding = _pair(padding)
        self.dilation = _pair(dilation)
        self.groups = groups
        self.deformable_groups = deformable_groups
        self.with_bias = bias
        self.norm = norm
        self.activation = activation

        self.weight = nn.Parameter(torch.empty(out_channels, in_channels // groups, *self.kernel_size))
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")
        if bias:
            self.bias = nn.Parameter(torch.zeros(out_channels))
        else:
            self.register_parameter("bias", None)

    def _output_hw(self, x: torch.Tensor) -> Tuple[int, int]:
        """Output height and width of a convolution with these arguments on ``x``."""
        return tuple(
            (size + 2 * p - (d * (k - 1) + 1)) // s + 1
            for size, p, d, k, s in zip(x.shape[-2:], self.padding, self.dilation, self.kernel_size, self.stride)
        )

    def _check_sampling_inputs(self, x: torch.Tensor, offset: torch.Tensor, mask: Optional[torch.Tensor]) -> None:
        """torchvision infers the deformable groups from ``offset``: make it agree with the module."""
        if torch.jit.is_tracing() or torch.jit.is_scripting():
            return
        name = type(self).__name__
        if x.dim() != 4:
            raise ValueError(f"{name}: input of shape {tuple(x.shape)}, expected (N, C, H, W)")
        positions = self.deformable_groups * self.kernel_size[0] * self.kernel_size[1]
        expected = (x.shape[0], 2 * positions, *self._output_hw(x))
        if tuple(offset.shape) != expected:
            raise ValueError(f"{name}: offset of shape {tuple(offset.shape)}, expected {expected}")
        if mask is not None and tuple(mask.shape) != (expected[0], positions, *expected[2:]):
            raise ValueError(
                f"{name}: mask of shape {tuple(mask.shape)}, expected {(expected[0], positions, *expected[2:])}"
            )

    def _deform(self, x: torch.Tensor, offset: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
        """The (modulated) deformable convolution, then norm and activation."""
        self._check_sampling_inputs(x, offset, mask)
        x = deform_conv2d(
            x,
            offset,
            self.weight,
            self.bias,
            stride=self.stride,
            padding=self.padding,
            dilation=self.dilation,
            mask=mask,
        )
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x

    def extra_repr(self) -> str:
        return (
            f"in_channels={self.in_channels}, out_channels={self.out_channels}, "
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, groups={self.groups}, "
            f"deformable_groups={self.deformable_groups}, bias={self.with_bias}"
        )


class DeformConv(_DeformConvBase):
    """Deformable convolution ("Deformable Convolutional Networks", DCNv1), without bias.

    Arguments as :class:`Conv2d`, plus ``deformable_groups`` (channel groups sharing one set of
    offsets). ``forward(x, offset)``: offset is (N, 2 * deformable_groups * kh * kw, Ho, Wo).
    """

    def __init__(self, *args: Any, bias: bool = False, **kwargs: Any):
        """Arguments as :class:`ModulatedDeformConv` (in_channels, out_channels, kernel_size,
        stride, padding, dilation, groups, deformable_groups, norm, activation); no bias."""
        if bias:
            raise ValueError("DeformConv: bias=True, expected False (detectron2's DeformConv has no bias)")
        super().__init__(*args, bias=False, **kwargs)

    def forward(self, x: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        return self._deform(x, offset, None)


class ModulatedDeformConv(_DeformConvBase):
    """Modulated deformable convolution ("Deformable ConvNets v2", DCNv2): every sample is also
    weighted by a mask value. Has a bias by default, as in detectron2.

    ``forward(x, offset, mask)``: mask is (N, deformable_groups * kh * kw, Ho, Wo), usually a
    sigmoid output.
    """

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self._deform(x, offset, mask)
