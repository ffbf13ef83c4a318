"""Transposed convolutions whose stride equals their kernel (the mask head's 2x2 stride-2 ``deconv``)
lowered as a 1x1 convolution to ``out_channels * k * k`` channels and a ``DepthToSpace``: the
kernel windows do not overlap, so each output pixel is one input pixel's products with one kernel
tap, the same sums as ``ConvTranspose``. Used for int8 only: onnxruntime quantizes the convolution
(``QLinearConv``) but runs ``ConvTranspose`` in fp32 between a DequantizeLinear and a
QuantizeLinear. Measured on the mask head's deconv (100x256x14x14 -> 100x256x28x28, + ReLU, 2
threads, median of 10 alternating onnxruntime runs): int8 0.071 s CPU as
Conv + DepthToSpace vs 0.091 s as ConvTranspose; fp32 0.103 s vs 0.071 s, so fp32 keeps
``ConvTranspose``."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _as_pair(value) -> tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def is_strided_deconv(module: nn.Module) -> bool:
    """A ConvTranspose2d with a square kernel equal to its stride, no padding, dilation or groups."""
    if not isinstance(module, nn.ConvTranspose2d):
        return False
    kernel = _as_pair(module.kernel_size)
    return (
        kernel[0] == kernel[1]
        and _as_pair(module.stride) == kernel
        and _as_pair(module.padding) == (0, 0)
        and _as_pair(module.output_padding) == (0, 0)
        and _as_pair(module.dilation) == (1, 1)
        and module.groups == 1
        and module.padding_mode == "zeros"
    )


class DeconvAsConv(nn.Module):
    """``deconv(x)`` as ``pixel_shuffle(conv1x1(x))``: output channel ``c * k * k + a * k + b`` of the
    1x1 convolution is tap (a, b) of the deconvolution's output channel c (DepthToSpace's CRD order)."""

    def __init__(self, deconv: nn.ConvTranspose2d) -> None:
        super().__init__()
        in_channels, out_channels, k, _ = deconv.weight.shape
        self.scale = int(k)
        self.conv = nn.Conv2d(in_channels, out_channels * k * k, kernel_size=1, bias=deconv.bias is not None)
        with torch.no_grad():
            self.conv.weight.copy_(deconv.weight.permute(1, 2, 3, 0).reshape(out_channels * k * k, in_channels, 1, 1))
            if deconv.bias is not None:
                self.conv.bias.copy_(deconv.bias.repeat_interleave(k * k))
        self.conv.to(deconv.weight.device, deconv.weight.dtype)

    def forward(self, x: Tensor) -> Tensor:
        return F.pixel_shuffle(self.conv(x), self.scale)


def replace_strided_deconvs(model: nn.Module) -> int:
    """Replace, in place, every strided deconvolution of ``model`` by a :class:`DeconvAsConv`;
    returns how many (``export_onnx`` calls it on its own copy of the model)."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if is_strided_deconv(child):
                setattr(parent, name, DeconvAsConv(child))
                replaced += 1
    return replaced
