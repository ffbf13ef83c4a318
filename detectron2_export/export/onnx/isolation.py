"""Batch isolation: a batched run gives every image the features it gets alone.

Images of a batch are padded to the largest one. Zeros stay zero only in the input: after the first
convolution the padding holds biases and activations, which convolutions near an image's border
then read, so detections of the smaller images change with the batch (detectron2 itself behaves so).
Alone, the image would be padded only to its own size and convolutions would read zero padding there.
Forward pre-hooks on every module that reads neighbours (kernel > 1: convolutions and pools) zero
each image's input beyond the extent that image has alone at that stride (ceil of its padded size
over the stride, as stride-2 layers round up), which reproduces the zero padding exactly. Max pools
are hooked too: detectron2's follow a ReLU, so 0 is the identity of their max. Deformable
convolutions too: their samples beyond the extent then read 0, as out-of-bounds samples do alone. ResNet's stem calls
``F.max_pool2d`` itself, so the output of its ``conv1`` is zeroed instead (the ReLU keeps it 0).
"""

from __future__ import annotations

from typing import Dict, List, Optional

import torch
from torch import Tensor, nn


def _reads_neighbours(module: nn.Module) -> bool:
    from ...layers.deform_conv import DeformConv, ModulatedDeformConv

    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, DeformConv, ModulatedDeformConv)):
        kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        return max(kernel) > 1
    return False


class BatchIsolation:
    """Hooks the neighbour-reading modules of ``roots``; :meth:`set_sizes` gives them the batch's
    per-image padded sizes before each forward. Strides are measured on the first (eager) call."""

    def __init__(self, roots: List[nn.Module]) -> None:
        self.sizes: Optional[Tensor] = None
        self.full_height: Optional[int] = None
        self.strides: Dict[tuple, List[int]] = {}
        self.calls: Dict[tuple, int] = {}
        for root in roots:
            for name, module in root.named_modules():
                if _reads_neighbours(module):
                    module.register_forward_pre_hook(self._hook)
                if name.endswith("stem.conv1") and isinstance(module, nn.Conv2d):
                    module.register_forward_hook(self._output_hook)

    def set_sizes(self, padded_sizes: Tensor, padded_images: Tensor) -> None:
        """Start a forward pass over a batch with these per-image padded sizes."""
        self.sizes = padded_sizes
        self.calls = {}
        if not torch.jit.is_tracing():
            self.full_height = int(padded_images.shape[2])

    def _stride(self, key: tuple, x: Tensor) -> int:
        """Stride of ``x`` relative to the padded batch. A module shared by the levels (RPN and
        RetinaNet heads) sees a new stride at each call: strides are kept per call, measured on
        eager calls and replayed while tracing (where sizes are graph values)."""
        call = self.calls.get(key, 0)
        self.calls[key] = call + 1
        recorded = self.strides.setdefault(key, [])
        if torch.jit.is_tracing():
            if call >= len(recorded):
                raise RuntimeError("BatchIsolation: strides are measured on an eager call before tracing")
            return recorded[call]
        stride = _stride_of(self.full_height, int(x.shape[2]))
        recorded[call:call + 1] = [stride]
        return stride

    def _hook(self, module: nn.Module, args):
        return (self._mask((id(module), "input"), args[0]),) + tuple(args[1:])

    def _output_hook(self, module: nn.Module, args, output: Tensor) -> Tensor:
        return self._mask((id(module), "output"), output)

    def _mask(self, key: tuple, x: Tensor) -> Tensor:
        stride = self._stride(key, x)
        extent = torch.div(self.sizes + (stride - 1), stride, rounding_mode="floor")  # (N, 2)
        rows = torch.arange(x.shape[2], device=x.device)
        cols = torch.arange(x.shape[3], device=x.device)
        inside = (rows[None, :, None] < extent[:, 0, None, None]) & (cols[None, None, :] < extent[:, 1, None, None])
        return torch.where(inside[:, None], x, torch.zeros_like(x))


def _stride_of(full: int, size: int) -> int:
    """The smallest power of two s with ceil(full / s) == size: the stride of a map of ``size``
    rows computed from ``full`` rows by stride-2 layers that round up (any larger s that also fits
    gives every image the same extent)."""
    stride = 1
    while -(-full // stride) > size:
        stride *= 2
    if -(-full // stride) != size:
        raise RuntimeError(f"BatchIsolation: a map of {size} rows is no power-of-two stride of {full} rows")
    return stride


def replicate_edges(feature: Tensor, padded_sizes: Tensor, stride: int) -> Tensor:
    """Copy each image's last row and column (of its alone extent at ``stride``) one step outward.

    RoIAlign clamps a bilinear sample in the last row or column of the map it is given; in a batch
    that row has a neighbour from the padding. With the neighbour equal to the edge, the sample is
    the edge value again, as in the single-image run. Only that one row and column are ever read:
    boxes are clipped to the image, inside the extent.
    """
    extent = torch.div(padded_sizes + (stride - 1), stride, rounding_mode="floor")  # (N, 2)
    rows = torch.arange(feature.shape[2], device=feature.device)
    previous_row = torch.cat([feature[:, :, :1], feature[:, :, :-1]], dim=2)
    at_row = rows[None, :] == extent[:, 0, None]  # (N, H)
    feature = torch.where(at_row[:, None, :, None], previous_row, feature)
    cols = torch.arange(feature.shape[3], device=feature.device)
    previous_col = torch.cat([feature[:, :, :, :1], feature[:, :, :, :-1]], dim=3)
    at_col = cols[None, :] == extent[:, 1, None]  # (N, W)
    return torch.where(at_col[:, None, None, :], previous_col, feature)
