"""ONNX ``RoiAlign`` (opset 16+): detectron2's ROIAlignV2 is ``coordinate_transformation_mode=
"half_pixel"``, the original (misaligned) ROIAlign ``"output_half_pixel"``; both average-pool (ONNX's
``max`` mode is not the max of the bilinear samples in onnxruntime, so it is never emitted)."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.ops import roi_align as tv_roi_align


class _RoiAlign(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx,
        features: Tensor,
        boxes: Tensor,
        batch_indices: Tensor,
        output_size: tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool,
    ) -> Tensor:
        rois = torch.cat([batch_indices[:, None].to(boxes.dtype), boxes], dim=1)
        return tv_roi_align(features, rois, output_size, spatial_scale, sampling_ratio, aligned)

    @staticmethod
    def symbolic(g, features, boxes, batch_indices, output_size, spatial_scale: float, sampling_ratio: int, aligned: bool):
        return g.op(
            "RoiAlign",
            features,
            boxes,
            batch_indices,
            coordinate_transformation_mode_s="half_pixel" if aligned else "output_half_pixel",
            mode_s="avg",
            output_height_i=output_size[0],
            output_width_i=output_size[1],
            sampling_ratio_i=sampling_ratio,
            spatial_scale_f=spatial_scale,
        )


def roi_align(
    features: Tensor,
    boxes: Tensor,
    batch_indices: Tensor,
    output_size,
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> Tensor:
    """Pool (R, C, output_size[0], output_size[1]) (an int: square) from (N, C, H, W) ``features`` for (R, 4) XYXY ``boxes``
    in input pixels, box r taken from image ``batch_indices[r]`` (int64); torchvision's semantics."""
    size = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    return _RoiAlign.apply(features, boxes, batch_indices, size, spatial_scale, sampling_ratio, aligned)
