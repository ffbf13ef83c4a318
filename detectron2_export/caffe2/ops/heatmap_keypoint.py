"""``HeatmapMaxKeypoint``: keypoint locations from heatmaps with a quadratic sub-pixel fit (SPEC 5.10).

Instead of the bicubic upscaling of eager Mask R-CNN, Caffe2 fits a second-order Taylor expansion
around the heatmap's argmax (3x3 neighbourhood, mirrored at the border) and moves to its extremum.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import OperatorInputError
from ..registry import Arg, register_op
from .box_utils import caffe2_torch_ops

_MAX_DELTA = 1.5
_SINGULAR_DET = 1e-4


def heatmap_max_keypoint(heatmaps: Tensor, bboxes_in: Tensor, should_output_softmax: bool = True) -> Tensor:
    """The kernel of ``_caffe2::HeatmapMaxKeypoint``: (R, 4, K) with rows x, y, score, prob."""
    if heatmaps.dim() != 4 or heatmaps.shape[2] != heatmaps.shape[3] or heatmaps.shape[2] < 2:
        raise OperatorInputError(
            f"HeatmapMaxKeypoint: heatmaps shape={tuple(heatmaps.shape)}, expected (R, K, S, S) with S >= 2"
        )
    num_rois, num_keypoints, size, _ = heatmaps.shape
    if bboxes_in.dim() != 2 or bboxes_in.shape[0] != num_rois or bboxes_in.shape[1] < 4:
        raise OperatorInputError(
            f"HeatmapMaxKeypoint: bboxes_in shape={tuple(bboxes_in.shape)}, expected ({num_rois}, >=4)"
        )
    maps = heatmaps.reshape(num_rois * num_keypoints, size * size)
    max_index = maps.argmax(dim=1)  # first maximum in row-major order
    max_score = maps.gather(1, max_index.unsqueeze(1)).squeeze(1)
    max_y, max_x = max_index // size, max_index % size

    offsets = torch.tensor([-1, 0, 1], device=maps.device)
    # out-of-map neighbours are mirrored around the maximum: -1 -> +1, S -> S - 2
    ny = max_y.unsqueeze(1) + offsets
    nx = max_x.unsqueeze(1) + offsets
    ny = torch.where(ny >= size, ny - 2, torch.where(ny < 0, ny + 2, ny))
    nx = torch.where(nx >= size, nx - 2, torch.where(nx < 0, nx + 2, nx))
    f = maps.gather(1, (ny.unsqueeze(2) * size + nx.unsqueeze(1)).reshape(-1, 9)).reshape(-1, 3, 3)

    b0 = -(f[:, 1, 2] - f[:, 1, 0]) / 2
    b1 = -(f[:, 2, 1] - f[:, 0, 1]) / 2
    a00 = f[:, 1, 0] - 2 * f[:, 1, 1] + f[:, 1, 2]
    a01 = (f[:, 2, 2] - f[:, 2, 0] - f[:, 0, 2] + f[:, 0, 0]) / 4
    a11 = f[:, 0, 1] - 2 * f[:, 1, 1] + f[:, 2, 1]
    det = a00 * a11 - a01 * a01
    singular = det.abs() < _SINGULAR_DET
    safe_det = torch.where(singular, torch.ones_like(det), det)
    dx = (a11 * b0 - a01 * b1) / safe_det
    dy = (a00 * b1 - a01 * b0) / safe_det
    larger = torch.maximum(dx.abs(), dy.abs())
    clipped = larger > _MAX_DELTA
    dx = torch.where(clipped, dx / larger * _MAX_DELTA, dx)
    dy = torch.where(clipped, dy / larger * _MAX_DELTA, dy)
    fitted = f[:, 1, 1] - (b0 * dx + b1 * dy) + 0.5 * (dx * (a00 * dx + a01 * dy) + dy * (a01 * dx + a11 * dy))
    zero = torch.zeros_like(dx)
    dx, dy = torch.where(singular, zero, dx), torch.where(singular, zero, dy)
    score = torch.where(singular, max_score, fitted)

    boxes = bboxes_in[:, :4].repeat_interleave(num_keypoints, dim=0)
    x_len = (boxes[:, 2] - boxes[:, 0]).clamp(min=1.0)
    y_len = (boxes[:, 3] - boxes[:, 1]).clamp(min=1.0)
    # Caffe2 evaluates these in double precision before storing floats
    x = boxes[:, 0].double() + (0.5 + max_x.double() + dx.double()) * x_len.double() / size
    y = boxes[:, 1].double() + (0.5 + max_y.double() + dy.double()) * y_len.double() / size
    if should_output_softmax:  # Caffe2 divides raw exponentials; equal up to rounding, without overflow
        prob = torch.softmax(maps, dim=1).gather(1, max_index.unsqueeze(1)).squeeze(1)
    else:
        prob = torch.zeros_like(score)
    keypoints = torch.stack((x.to(maps.dtype), y.to(maps.dtype), score, prob), dim=1)
    return keypoints.reshape(num_rois, num_keypoints, 4).transpose(1, 2).contiguous()


@register_op(
    "HeatmapMaxKeypoint",
    n_inputs=(2, 2),
    args=(Arg("should_output_softmax", bool, False),),
)
def heatmap_max_keypoint_op(heatmaps: Tensor, bboxes_in: Tensor, *, should_output_softmax: bool) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.HeatmapMaxKeypoint`` (op default: no softmax)."""
    return (caffe2_torch_ops().HeatmapMaxKeypoint(heatmaps, bboxes_in, should_output_softmax),)
