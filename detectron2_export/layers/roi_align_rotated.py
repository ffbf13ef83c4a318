"""RoIAlign over rotated boxes (detectron2.layers.roi_align_rotated), in plain torch.

detectron2 ships this as a C++/CUDA kernel; here the same arithmetic (SPEC 5.4) is written with
tensor ops: for every output bin, a g_h x g_w grid of points is laid out in the box's own frame
(centred on the box), rotated by the box angle, bilinearly sampled and averaged. Boxes are always
"aligned": the centre is shifted by -0.5 pixel and the size is not clamped to 1.
"""

import math
from typing import Tuple, Union

import torch
from torch import nn
from torch.nn.modules.utils import _pair

__all__ = ["ROIAlignRotated", "roi_align_rotated"]

# Upper bound on sampled values (points x channels) held in memory at once.
_MAX_SAMPLES_PER_CHUNK = 1 << 24


def _bilinear_gather(
    flat: torch.Tensor, batch: torch.Tensor, y: torch.Tensor, x: torch.Tensor, H: int, W: int
) -> torch.Tensor:
    """Bilinear samples of ``flat`` ((N*H*W, C) pixels) at float points (P,): returns (P, C).

    Points farther than one pixel outside the map read 0; points in [-1, 0) read the border.
    """
    outside = (y < -1.0) | (y > H) | (x < -1.0) | (x > W)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y0 = y.floor().long()
    x0 = x.floor().long()
    y_last = y0 >= H - 1
    x_last = x0 >= W - 1
    y0 = torch.where(y_last, torch.full_like(y0, H - 1), y0)
    x0 = torch.where(x_last, torch.full_like(x0, W - 1), x0)
    y = torch.where(y_last, y0.to(y.dtype), y)
    x = torch.where(x_last, x0.to(x.dtype), x)
    y1 = torch.where(y_last, y0, y0 + 1)
    x1 = torch.where(x_last, x0, x0 + 1)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    base = batch * (H * W)
    value = (
        (hy * hx)[:, None] * flat[base + y0 * W + x0]
        + (hy * lx)[:, None] * flat[base + y0 * W + x1]
        + (ly * hx)[:, None] * flat[base + y1 * W + x0]
        + (ly * lx)[:, None] * flat[base + y1 * W + x1]
    )
    return value.masked_fill(outside[:, None], 0.0)


def _bin_offsets(pooled: int, grid: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Sample positions along one axis, in bins: bin p, point i -> p + (i + 0.5) / grid."""
    bins = torch.arange(pooled, dtype=dtype, device=device)[:, None]
    points = (torch.arange(grid, dtype=dtype, device=device)[None, :] + 0.5) / grid
    return (bins + points).reshape(-1)


def _pool_group(flat, rois, H, W, pooled_h, pooled_w, spatial_scale, g_h, g_w):
    """Pool rois (R, 6) that share one sampling grid g_h x g_w: returns (R, C, pooled_h, pooled_w)."""
    R = rois.shape[0]
    batch = rois[:, 0].long()
    cx = rois[:, 1] * spatial_scale - 0.5
    cy = rois[:, 2] * spatial_scale - 0.5
    roi_w = rois[:, 3] * spatial_scale
    roi_h = rois[:, 4] * spatial_scale
    theta = rois[:, 5] * (math.pi / 180.0)
    bin_h, bin_w = roi_h / pooled_h, roi_w / pooled_w

    dtype, device = rois.dtype, rois.device
    # point offsets inside the box, in units of bins: (pooled * g,)
    fy = _bin_offsets(pooled_h, g_h, dtype, device)
    fx = _bin_offsets(pooled_w, g_w, dtype, device)
    yy = (-roi_h / 2)[:, None, None] + bin_h[:, None, None] * fy[None, :, None]  # (R, PH*gh, 1)
    xx = (-roi_w / 2)[:, None, None] + bin_w[:, None, None] * fx[None, None, :]  # (R, 1, PW*gw)
    cos, sin = theta.cos()[:, None, None], theta.sin()[:, None, None]
    y = yy * cos - xx * sin + cy[:, None, None]
    x = yy * sin + xx * cos + cx[:, None, None]
    b = batch[:, None, None].expand_as(y)

    values = _bilinear_gather(flat, b.reshape(-1), y.reshape(-1), x.reshape(-1), H, W)
    C = flat.shape[1]
    values = values.reshape(R, pooled_h, g_h, pooled_w, g_w, C)
    return values.mean(dim=(2, 4)).permute(0, 3, 1, 2)


def roi_align_rotated(
    input: torch.Tensor,
    rois: torch.Tensor,
    output_size: Union[int, Tuple[int, int]],
    spatial_scale: float,
    sampling_ratio: int,
) -> torch.Tensor:
    """input (N, C, H, W); rois (R, 6) = (batch, cx, cy, w, h, angle_deg) -> (R, C, out_h, out_w).

    ``sampling_ratio`` <= 0 uses ceil(roi_size / output_size) points per bin along each axis.
    """
    pooled_h, pooled_w = _pair(output_size)
    N, C, H, W = input.shape
    R = rois.shape[0]
    out = input.new_zeros((R, C, pooled_h, pooled_w))
    if R == 0:
        return out
    rois = rois.to(input.dtype)
    if sampling_ratio > 0:
        grid_h = torch.full((R,), sampling_ratio, dtype=torch.long)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(rois[:, 4] * spatial_scale / pooled_h).long().clamp(min=0).cpu()
        grid_w = torch.ceil(rois[:, 3] * spatial_scale / pooled_w).long().clamp(min=0).cpu()
    flat = input.permute(0, 2, 3, 1).reshape(N * H * W, C)
    grids = torch.stack([grid_h, grid_w], dim=1)
    for g_h, g_w in torch.unique(grids, dim=0).tolist():
        idx = torch.nonzero((grids[:, 0] == g_h) & (grids[:, 1] == g_w)).flatten().to(rois.device)
        if g_h == 0 or g_w == 0:
            continue  # an empty box: no sample, output 0 (count = max(g_h * g_w, 1))
        per_roi = pooled_h * g_h * pooled_w * g_w * C
        chunk = max(1, _MAX_SAMPLES_PER_CHUNK // per_roi)
        for part in idx.split(chunk):
            out[part] = _pool_group(flat, rois[part], H, W, pooled_h, pooled_w, spatial_scale, g_h, g_w)
    return out


class ROIAlignRotated(nn.Module):
    """Pool rotated boxes (R, 6) = (batch, cx, cy, w, h, angle_deg) to ``output_size``.

    Args:
        output_size: (h, w) of the pooled output, or one int for a square.
        spatial_scale: multiplies box coordinates to get feature-map coordinates.
        sampling_ratio: points per bin along each axis; <= 0 means adaptive.
    """

    def __init__(self, output_size: Union[int, Tuple[int, int]], spatial_scale: float, sampling_ratio: int):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        assert rois.dim() == 2 and rois.size(1) == 6
        orig_dtype = input.dtype
        if orig_dtype == torch.float16:
            input = input.float()
            rois = rois.float()
        return roi_align_rotated(input, rois, self.output_size, self.spatial_scale, self.sampling_ratio).to(
            dtype=orig_dtype
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio})"
        )
