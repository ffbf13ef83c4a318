"""``RoIAlign`` and ``RoIAlignRotated``: bilinear RoI pooling (SPEC 5.4).

Caffe2's upright RoIAlign is the algorithm of ``torchvision.ops.roi_align`` (same sampling grid,
``aligned`` half-pixel shift, adaptive ``sampling_ratio`` and border handling), which is used as the
kernel. The rotated variant samples the same grid in the RoI's frame, rotated into the image.
"""

from __future__ import annotations

import functools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import torch
import torchvision
from torch import Tensor

from ...errors import OperatorInputError
from ..op_args import check_allocation
from ..registry import Arg, register_op
from .box_utils import caffe2_torch_ops

_ROTATED_CHUNK = 64
"""RoIs sampled together by RoIAlignRotated (bounds the memory of the gathered corners)."""

_PARALLEL_MIN_ROIS = 32
"""Fewest RoIs per thread for which RoIAlign splits its work across threads."""

_MAX_SAMPLES = 1 << 36
"""Most bilinear samples one RoIAlign call may take (RoIs x channels x bins x grid points): an
adaptive grid (``sampling_ratio <= 0``) grows with the RoI, so a huge RoI would run for hours."""


def _check(op: str, features: Tensor, rois: Tensor, order: str, box_cols: int) -> None:
    if order not in ("NCHW", "NHWC"):
        raise OperatorInputError(f"{op}: order={order!r}, expected 'NCHW' or 'NHWC'")
    if features.dim() != 4:
        raise OperatorInputError(f"{op}: features shape={tuple(features.shape)}, expected 4-D ({order})")
    if rois.dim() != 2 or rois.shape[1] not in (box_cols, box_cols + 1):
        raise OperatorInputError(
            f"{op}: rois shape={tuple(rois.shape)}, expected (R, {box_cols}) or (R, {box_cols + 1})"
        )


def _check_sizes(op: str, widths: Tensor, heights: Tensor) -> None:
    bad = torch.nonzero((widths < 0) | (heights < 0)).squeeze(1)
    if bad.numel() > 0:
        i = int(bad[0])
        raise OperatorInputError(
            f"{op}: roi {i} scaled size=({float(widths[i])}, {float(heights[i])}), expected non-negative when aligned"
        )


def _with_batch_index(rois: Tensor, box_cols: int, dtype: torch.dtype) -> Tensor:
    rois = rois.to(dtype)
    if rois.shape[1] == box_cols:
        rois = torch.cat((rois.new_zeros((rois.shape[0], 1)), rois), dim=1)
    return rois


def _check_rois(
    op: str, rois: Tensor, features: Tensor, order: str, sizes: tuple[Tensor, Tensor], pooled: tuple[int, int],
    sampling_ratio: int,
) -> None:
    """Batch indices inside the batch, finite boxes and a bounded sampling grid, before a kernel that
    checks none of them (torchvision's CPU kernel reads out of bounds or crashes on a bad index).

    ``sizes``: each RoI's (height, width) on the feature map, as the kernel computes its grid."""
    batch = features.shape[0]
    index = rois[:, 0]
    bad = torch.nonzero(~((index > -1) & (index < batch))).squeeze(1)  # truncated toward zero, as Caffe2
    if bad.numel():
        i = int(bad[0])
        raise OperatorInputError(
            f"{op}: rois[{i}] batch index={float(index[i])}, expected in [0, {batch - 1}] (features shape "
            f"{tuple(features.shape)}); {bad.numel()} of {rois.shape[0]} RoIs out of range"
        )
    finite = torch.isfinite(rois).all(dim=1)
    if not bool(finite.all()):
        i = int(torch.nonzero(~finite)[0, 0])
        raise OperatorInputError(f"{op}: rois[{i}]={rois[i].tolist()}, expected finite values")
    heights, widths = sizes
    channels = features.shape[1] if order == "NCHW" else features.shape[3]
    check_allocation(op, "output", (rois.shape[0], channels, *pooled), features.dtype)
    if sampling_ratio > 0:
        grid = rois.shape[0] * sampling_ratio * sampling_ratio
    else:
        grid_h = torch.ceil(heights.double().clamp(min=1.0) / pooled[0])
        grid_w = torch.ceil(widths.double().clamp(min=1.0) / pooled[1])
        grid = float((grid_h * grid_w).sum())
    samples = grid * pooled[0] * pooled[1] * channels
    if samples > _MAX_SAMPLES:
        raise OperatorInputError(
            f"{op}: {rois.shape[0]} RoIs of up to {float(heights.max()):.4g} x {float(widths.max()):.4g} feature "
            f"pixels with sampling_ratio={sampling_ratio} need {samples:.3g} bilinear samples, expected at most "
            f"{_MAX_SAMPLES} (RoIs far larger than the feature map {tuple(features.shape)}?)"
        )


def _empty_output(features: Tensor, order: str, pooled_h: int, pooled_w: int) -> Tensor:
    channels = features.shape[1] if order == "NCHW" else features.shape[3]
    shape = (0, channels, pooled_h, pooled_w) if order == "NCHW" else (0, pooled_h, pooled_w, channels)
    return features.new_zeros(shape)


def roi_align(
    features: Tensor,
    rois: Tensor,
    order: str,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """The kernel of ``_caffe2::RoIAlign``: (R, C, pooled_h, pooled_w), or (R, pooled_h, pooled_w, C) for NHWC."""
    _check("RoIAlign", features, rois, order, 4)
    if rois.shape[0] == 0:
        return _empty_output(features, order, pooled_h, pooled_w)
    rois = _with_batch_index(rois, 4, features.dtype)
    scaled = rois[:, 1:] * spatial_scale
    heights, widths = scaled[:, 3] - scaled[:, 1], scaled[:, 2] - scaled[:, 0]
    _check_rois("RoIAlign", rois, features, order, (heights, widths), (pooled_h, pooled_w), sampling_ratio)
    if aligned:  # Caffe2 rejects negative sizes here (unaligned RoIs are widened to 1 instead)
        _check_sizes("RoIAlign", widths, heights)
    x = (features if order == "NCHW" else features.permute(0, 3, 1, 2)).contiguous()
    y = _pool_upright(x, rois, (pooled_h, pooled_w), spatial_scale, sampling_ratio, aligned)
    return y if order == "NCHW" else y.permute(0, 2, 3, 1).contiguous()


@functools.lru_cache(maxsize=None)
def _executor(workers: int, pid: int) -> ThreadPoolExecutor:
    # keyed by process: a forked child inherits the pool object but not its threads
    return ThreadPoolExecutor(workers, thread_name_prefix="caffe2_roi_align")


def _pool_upright(
    x: Tensor, rois: Tensor, output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool
) -> Tensor:
    """``torchvision.ops.roi_align``, the RoIs split across torch's intra-op threads on CPU.

    torchvision's CPU kernel runs on one thread; each RoI's output depends only on that RoI, so
    pooling chunks in parallel (the kernel releases the GIL) gives the same tensor.
    """
    chunks = min(torch.get_num_threads(), rois.shape[0] // _PARALLEL_MIN_ROIS)
    if chunks < 2 or x.device.type != "cpu" or torch.jit.is_tracing():
        return torchvision.ops.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
    parts = _executor(chunks, os.getpid()).map(
        lambda part: torchvision.ops.roi_align(x, part, output_size, spatial_scale, sampling_ratio, aligned),
        rois.chunk(chunks),
    )
    return torch.cat(list(parts))


def roi_align_rotated(
    features: Tensor,
    rois: Tensor,
    order: str,
    spatial_scale: float,
    pooled_h: int,
    pooled_w: int,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """The kernel of ``_caffe2::RoIAlignRotated``; rois are ``([batch,] cx, cy, w, h, angle_degrees)``."""
    _check("RoIAlignRotated", features, rois, order, 5)
    if rois.shape[0] == 0:
        return _empty_output(features, order, pooled_h, pooled_w)
    rois = _with_batch_index(rois, 5, features.dtype)
    sizes = (rois[:, 4] * spatial_scale, rois[:, 3] * spatial_scale)
    _check_rois("RoIAlignRotated", rois, features, order, sizes, (pooled_h, pooled_w), sampling_ratio)
    nhwc = features if order == "NHWC" else features.permute(0, 2, 3, 1)
    pooled = torch.cat(
        [
            _rotated_chunk(nhwc, chunk, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned)
            for chunk in rois.split(_ROTATED_CHUNK)
        ]
    )
    return pooled if order == "NHWC" else pooled.permute(0, 3, 1, 2).contiguous()


def _rotated_chunk(
    nhwc: Tensor, rois: Tensor, spatial_scale: float, pooled_h: int, pooled_w: int,
    sampling_ratio: int, aligned: bool,
) -> Tensor:
    """(R, pooled_h, pooled_w, C) for a chunk of rotated rois, grouped by sampling grid size."""
    offset = 0.5 if aligned else 0.0
    cx = rois[:, 1] * spatial_scale - offset
    cy = rois[:, 2] * spatial_scale - offset
    roi_w = rois[:, 3] * spatial_scale
    roi_h = rois[:, 4] * spatial_scale
    if aligned:
        _check_sizes("RoIAlignRotated", roi_w, roi_h)
    else:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    theta = rois[:, 5] * math.pi / 180.0
    if sampling_ratio > 0:
        grid_h = torch.full_like(roi_h, sampling_ratio, dtype=torch.int64)
        grid_w = torch.full_like(roi_w, sampling_ratio, dtype=torch.int64)
    else:
        grid_h = torch.ceil(roi_h / pooled_h).to(torch.int64)
        grid_w = torch.ceil(roi_w / pooled_w).to(torch.int64)
    out = nhwc.new_zeros((rois.shape[0], pooled_h, pooled_w, nhwc.shape[3]))
    for gh, gw in torch.stack((grid_h, grid_w), dim=1).unique(dim=0).tolist():
        sel = torch.nonzero((grid_h == gh) & (grid_w == gw)).squeeze(1)
        if gh == 0 or gw == 0:
            continue  # no sample: the bin stays 0 (the average over max(count, 1))
        bin_h = (roi_h[sel] / pooled_h).view(-1, 1, 1, 1, 1)
        bin_w = (roi_w[sel] / pooled_w).view(-1, 1, 1, 1, 1)
        ph = torch.arange(pooled_h, device=nhwc.device, dtype=nhwc.dtype).view(1, -1, 1, 1, 1)
        pw = torch.arange(pooled_w, device=nhwc.device, dtype=nhwc.dtype).view(1, 1, -1, 1, 1)
        iy = torch.arange(gh, device=nhwc.device, dtype=nhwc.dtype).view(1, 1, 1, -1, 1)
        ix = torch.arange(gw, device=nhwc.device, dtype=nhwc.dtype).view(1, 1, 1, 1, -1)
        yy = -roi_h[sel].view(-1, 1, 1, 1, 1) / 2.0 + ph * bin_h + (iy + 0.5) * bin_h / gh
        xx = -roi_w[sel].view(-1, 1, 1, 1, 1) / 2.0 + pw * bin_w + (ix + 0.5) * bin_w / gw
        cos = torch.cos(theta[sel]).view(-1, 1, 1, 1, 1)
        sin = torch.sin(theta[sel]).view(-1, 1, 1, 1, 1)
        x = xx * cos + yy * sin + cx[sel].view(-1, 1, 1, 1, 1)
        y = yy * cos - xx * sin + cy[sel].view(-1, 1, 1, 1, 1)
        batch = rois[sel, 0].to(torch.int64).view(-1, 1, 1, 1, 1)
        samples = _bilinear_nhwc(nhwc, batch, y, x)
        out[sel] = samples.mean(dim=(3, 4))
    return out


def _bilinear_nhwc(nhwc: Tensor, batch: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Caffe2/torchvision RoIAlign bilinear samples of ``nhwc`` (N, H, W, C) at (y, x): shape (..., C).

    Points beyond one pixel outside the map read 0; others are clamped to the map's border.
    """
    _, height, width, _ = nhwc.shape
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.floor().to(torch.int64).clamp(max=height - 1)
    x_low = x.floor().to(torch.int64).clamp(max=width - 1)
    y = torch.where(y_low >= height - 1, y_low.to(y.dtype), y)
    x = torch.where(x_low >= width - 1, x_low.to(x.dtype), x)
    y_high = (y_low + 1).clamp(max=height - 1)
    x_high = (x_low + 1).clamp(max=width - 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1.0 - ly, 1.0 - lx
    weights = [hy * hx, hy * lx, ly * hx, ly * lx]
    corners = [(y_low, x_low), (y_low, x_high), (y_high, x_low), (y_high, x_high)]
    batch = batch.expand_as(y_low)
    value = sum(
        nhwc[batch, yi, xi] * w.masked_fill(outside, 0.0).unsqueeze(-1)
        for (yi, xi), w in zip(corners, weights)
    )
    return value


_ROI_ALIGN_ARGS = (
    Arg("order", str, "NCHW", lambda v: v in ("NCHW", "NHWC"), "'NCHW' or 'NHWC'"),
    Arg("spatial_scale", float, 1.0, lambda v: v > 0, "a positive float"),
    Arg("pooled_h", int, 1, lambda v: v >= 1, "an int >= 1"),
    Arg("pooled_w", int, 1, lambda v: v >= 1, "an int >= 1"),
    Arg("sampling_ratio", int, -1),
    Arg("aligned", bool, False),
)


@register_op("RoIAlign", n_inputs=(2, 2), args=_ROI_ALIGN_ARGS, contiguous_inputs=(0,))
def roi_align_op(features: Tensor, rois: Tensor, **args) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.RoIAlign``."""
    return (caffe2_torch_ops().RoIAlign(features, rois, **args),)


@register_op("RoIAlignRotated", n_inputs=(2, 2), args=_ROI_ALIGN_ARGS)
def roi_align_rotated_op(features: Tensor, rois: Tensor, **args) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.RoIAlignRotated``."""
    return (caffe2_torch_ops().RoIAlignRotated(features, rois, **args),)
