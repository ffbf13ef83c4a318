"""Atrous Spatial Pyramid Pooling (detectron2.layers.aspp), the context module of DeepLabV3(+).

Same sub-module layout as upstream (``convs.0`` 1x1, ``convs.1-3`` dilated 3x3, ``convs.4`` the
image pooling branch, ``project``), so DeepLab checkpoints load unchanged.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .batch_norm import get_norm
from .blocks import DepthwiseSeparableConv2d
from .wrappers import Conv2d

__all__ = ["ASPP"]


class ASPP(nn.Module):
    """Parallel 1x1, three dilated 3x3 and an image-pooling branch, concatenated and projected.

    Args:
        in_channels, out_channels: channels of the input and of every branch and the output.
        dilations: the three dilations of the 3x3 branches.
        norm: a ``get_norm`` name ("" for none: the convolutions then have biases); the pooling
            branch has none (its output is 1x1, or made of few positions).
        activation: applied after every convolution (a deep copy each).
        pool_kernel_size: (h, w) of a stride-1 average pooling for the pooling branch; None:
            global average pooling. The input size must be a multiple of it.
        dropout: on the projected output, in training.
        use_depthwise_separable_conv: depthwise-separable dilated branches.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        dilations: Sequence[int],
        *,
        norm: str | nn.Module,
        activation: nn.Module,
        pool_kernel_size: Sequence[int] | None = None,
        dropout: float = 0.0,
        use_depthwise_separable_conv: bool = False,
    ):
        super().__init__()
        if len(dilations) != 3:
            raise ValueError(f"ASPP: dilations={list(dilations)}, expected 3 dilations")
        self.pool_kernel_size = pool_kernel_size
        self.dropout = dropout
        use_bias = norm == ""
        # lazily: modeling imports layers
        from ..modeling.weight_init import c2_xavier_fill

        def conv(in_ch: int, kernel_size: int, dilation: int = 1) -> Conv2d:
            """A branch convolution, initialised as soon as built (upstream's RNG order)."""
            module = Conv2d(
                in_ch, out_channels, kernel_size=kernel_size, padding=dilation if kernel_size == 3 else 0,
                dilation=dilation, bias=use_bias, norm=get_norm(norm, out_channels),
                activation=deepcopy(activation),
            )
            c2_xavier_fill(module)
            return module

        self.convs = nn.ModuleList([conv(in_channels, 1)])
        for dilation in dilations:
            if use_depthwise_separable_conv:  # keeps its own initialisation
                self.convs.append(
                    DepthwiseSeparableConv2d(
                        in_channels, out_channels, kernel_size=3, padding=dilation, dilation=dilation,
                        norm1=norm, activation1=deepcopy(activation), norm2=norm, activation2=deepcopy(activation),
                    )
                )
            else:
                self.convs.append(conv(in_channels, 3, dilation))
        pool = nn.AdaptiveAvgPool2d(1) if pool_kernel_size is None else nn.AvgPool2d(pool_kernel_size, stride=1)
        pool_conv = Conv2d(in_channels, out_channels, 1, bias=True, activation=deepcopy(activation))
        c2_xavier_fill(pool_conv)
        self.convs.append(nn.Sequential(pool, pool_conv))
        self.project = conv(5 * out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        if self.pool_kernel_size is not None and (
            size[0] % self.pool_kernel_size[0] or size[1] % self.pool_kernel_size[1]
        ):
            raise ValueError(
                f"ASPP: input size={tuple(size)}, expected multiples of pool_kernel_size="
                f"{tuple(self.pool_kernel_size)}"
            )
        res = [conv(x) for conv in self.convs]
        res[-1] = F.interpolate(res[-1], size=size, mode="bilinear", align_corners=False)
        out = self.project(torch.cat(res, dim=1))
        return F.dropout(out, self.dropout, training=self.training) if self.dropout > 0 else out
