"""Batch isolation: a batched run gives every image the features it gets alone.

Images of a batch are padded to the largest one. Zeros stay zero only in the input: after the first
convolution the padding holds biases and activations, which layers near an image's border then
read, so detections of the smaller images change with the batch (detectron2 itself behaves so).
Alone, the image would be padded only to its own size: its extent at a stride is the ceil of its
padded size over the stride (stride-2 layers round up). Hooks on the deep copy being exported make
every layer that looks beyond a pixel see what it sees alone:

- convolutions and pools with a kernel > 1, deformable convolutions: the input beyond the extent
  is zeroed, which is their zero padding (max pools follow a ReLU, so 0 is the identity of their
  max; deformable samples beyond the extent read 0, as out-of-bounds samples do);
- bilinear upsampling: the last row and column are copied one step outward, as its index clamp;
- GroupNorm: statistics over the extent only;
- functional calls inside detectron2 modules: ResNet's stem max pool (the output of ``stem.conv1``
  is zeroed) and the semantic head's final bilinear resize (edges of ``sem_seg_head.predictor``'s
  output copied).

Strides are a property of the network: they are measured on one eager calibration pass over a
canvas large enough to tell every stride apart, and replayed, call by call, while tracing.
"""

from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Optional

import torch
from torch import Tensor, nn

from .extent import ceil_div, inside

CALIBRATION_SIZE = 512
"""Height and width of the calibration canvas: strides up to 256 give distinct map sizes."""


def _reads_neighbours(module: nn.Module) -> bool:
    from ...layers.deform_conv import DeformConv, ModulatedDeformConv

    if isinstance(module, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d, DeformConv, ModulatedDeformConv)):
        kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        return max(kernel) > 1
    return False


def _is_bilinear_upsample(module: nn.Module) -> bool:
    return isinstance(module, nn.Upsample) and module.mode in ("bilinear", "bicubic")


class BatchIsolation:
    """Hooks the layers of ``roots`` (see the module docstring); :meth:`set_sizes` gives them the
    batch's per-image padded sizes before each forward."""

    def __init__(self, roots: List[nn.Module]) -> None:
        self.sizes: Optional[Tensor] = None
        self.full_height: Optional[int] = None
        self.recorded: Dict[tuple, List[int]] = {}
        self.calls: Dict[tuple, int] = {}
        self.recording = False
        for root in roots:
            for name, module in root.named_modules():
                self._hook(name, module)

    def _hook(self, name: str, module: nn.Module) -> None:
        key = id(module)
        if _reads_neighbours(module) or _is_bilinear_upsample(module):
            edit = self.zero_outside if _reads_neighbours(module) else self.replicate_edges
            module.register_forward_pre_hook(lambda m, args: (edit((key, "in"), args[0]),) + tuple(args[1:]))
        if isinstance(module, nn.GroupNorm):
            module.register_forward_hook(lambda m, args, out: self.group_norm(m, (key, "gn"), args[0]))
        if isinstance(module, nn.Conv2d) and name.endswith("stem.conv1"):
            module.register_forward_hook(lambda m, args, out: self.zero_outside((key, "out"), out))
        if isinstance(module, nn.Conv2d) and name.endswith("sem_seg_head.predictor"):
            module.register_forward_hook(lambda m, args, out: self.replicate_edges((key, "out"), out))

    @contextlib.contextmanager
    def calibrating(self) -> Iterator[None]:
        """Record the stride of every hooked call during the enclosed (eager) forward."""
        self.recording, self.recorded = True, {}
        try:
            yield
        finally:
            self.recording = False

    def set_sizes(self, padded_sizes: Tensor, padded_images: Tensor) -> None:
        """Start a forward pass over a batch with these per-image padded sizes."""
        self.sizes = padded_sizes
        self.full_height = int(padded_images.shape[2])
        self.calls = {}

    def _stride(self, key: tuple, x: Tensor) -> int:
        call = self.calls.get(key, 0)
        self.calls[key] = call + 1
        recorded = self.recorded.setdefault(key, [])
        if self.recording or call >= len(recorded):
            stride = _stride_of(self.full_height, int(x.shape[2]))
            if self.recording:
                recorded.append(stride)
            return stride
        return recorded[call]

    def _extent(self, key: tuple, x: Tensor) -> Tensor:
        return ceil_div(self.sizes, self._stride(key, x))  # (N, 2)

    def _inside(self, key: tuple, x: Tensor) -> Tensor:
        """(N, 1, H, W) bool: the pixels of ``x`` inside each image's extent."""
        return inside(x, self._extent(key, x))[:, None]

    def zero_outside(self, key: tuple, x: Tensor) -> Tensor:
        return torch.where(self._inside(key, x), x, torch.zeros_like(x))

    def replicate_edges(self, key: tuple, x: Tensor) -> Tensor:
        return _replicate_edges(x, self._extent(key, x))

    def group_norm(self, module: nn.GroupNorm, key: tuple, x: Tensor) -> Tensor:
        """``module``'s GroupNorm of ``x`` with statistics over each image's extent."""
        inside = self._inside(key, x).to(x.dtype)[:, None]  # (N, 1, 1, H, W)
        n, c, h, w = x.shape[0], x.shape[1], x.shape[2], x.shape[3]
        groups = x.reshape(n, module.num_groups, -1, h, w)
        count = inside.sum(dim=(2, 3, 4), keepdim=True) * groups.shape[2]
        mean = (groups * inside).sum(dim=(2, 3, 4), keepdim=True) / count
        var = ((groups - mean) ** 2 * inside).sum(dim=(2, 3, 4), keepdim=True) / count
        y = ((groups - mean) / torch.sqrt(var + module.eps)).reshape(n, c, h, w)
        if module.affine:
            y = y * module.weight[None, :, None, None] + module.bias[None, :, None, None]
        return y


def _stride_of(full: int, size: int) -> int:
    """The smallest power of two s with ceil(full / s) == size: the stride of a map of ``size``
    rows computed from ``full`` rows by stride-2 layers that round up."""
    stride = 1
    while -(-full // stride) > size:
        stride *= 2
    if -(-full // stride) != size:
        raise RuntimeError(f"BatchIsolation: a map of {size} rows is no power-of-two stride of {full} rows")
    return stride


def _replicate_edges(feature: Tensor, extent: Tensor) -> Tensor:
    """Copy each image's last row and column (of its ``extent`` (N, 2)) one step outward."""
    rows = torch.arange(feature.shape[2], device=feature.device)
    previous_row = torch.cat([feature[:, :, :1], feature[:, :, :-1]], dim=2)
    at_row = rows[None, :] == extent[:, 0, None]  # (N, H)
    feature = torch.where(at_row[:, None, :, None], previous_row, feature)
    cols = torch.arange(feature.shape[3], device=feature.device)
    previous_col = torch.cat([feature[:, :, :, :1], feature[:, :, :, :-1]], dim=3)
    at_col = cols[None, :] == extent[:, 1, None]  # (N, W)
    return torch.where(at_col[:, None, None, :], previous_col, feature)


def replicate_edges(feature: Tensor, padded_sizes: Tensor, stride: int) -> Tensor:
    """Copy each image's last row and column (of its alone extent at ``stride``) one step outward.

    RoIAlign clamps a bilinear sample in the last row or column of the map it is given; in a batch
    that row has a neighbour from the padding. With the neighbour equal to the edge, the sample is
    the edge value again, as in the single-image run. Only that one row and column are read for
    boxes clipped to the image, with one exception: legacy ROIAlign (``aligned=False``) widens a box
    to one feature pixel, so a box thinner than that at the right or bottom edge of a smaller image
    samples past the edge, where the image alone reads 0 (not reproduced).
    """
    return _replicate_edges(feature, ceil_div(padded_sizes, stride))
