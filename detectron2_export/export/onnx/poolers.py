"""Multi-level RoIAlign in the graph, as ``ROIPooler``: each box is pooled from the FPN level its
size assigns it to (``assign_boxes_to_levels``), by one ``RoiAlign`` per level over the boxes of that
level (``NonZero`` + ``Gather``), scattered back in box order (``ScatterND``)."""

from __future__ import annotations

from typing import List

import torch
from torch import Tensor

from ...errors import ExportError
from ...layers import ROIAlign
from .ops import roi_align


def _level_params(pooler) -> list[tuple[int, float, int, bool]]:
    params = []
    for level_pooler in pooler.level_poolers:
        if not isinstance(level_pooler, ROIAlign):
            raise ExportError(
                f"export_onnx: pooler {type(level_pooler).__name__}, expected ROIAlign or ROIAlignV2 "
                "(ONNX MaxRoiPool and rotated RoIAlign are not lowered)"
            )
        size = level_pooler.output_size
        size = (size, size) if isinstance(size, int) else tuple(size)
        params.append((tuple(int(s) for s in size), float(level_pooler.spatial_scale), int(level_pooler.sampling_ratio), bool(level_pooler.aligned)))
    return params


def assign_levels(boxes: Tensor, pooler) -> Tensor:
    """(R,) level of every (R, 4) box relative to the first level, as ``assign_boxes_to_levels``."""
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    level = torch.floor(pooler.canonical_level + torch.log2(torch.sqrt(area) / pooler.canonical_box_size + 1e-8))
    level = torch.clamp(level, min=pooler.min_level, max=pooler.max_level)
    return level.to(torch.int64) - pooler.min_level


def pool(pooler, features: List[Tensor], boxes: Tensor, batch_indices: Tensor) -> Tensor:
    """(R, C, S, S) features of the (R, 4) ``boxes`` (input pixels) of images ``batch_indices``."""
    params = _level_params(pooler)
    if len(features) != len(params):
        raise ExportError(f"export_onnx: {len(features)} feature maps for a pooler of {len(params)} levels")
    if len(params) == 1:
        return roi_align(features[0], boxes, batch_indices, *params[0])

    levels = assign_levels(boxes, pooler)
    height, width = params[0][0]
    output = torch.zeros(
        (boxes.shape[0], features[0].shape[1], height, width), dtype=features[0].dtype, device=features[0].device
    )
    for level, (feature, level_params) in enumerate(zip(features, params)):
        index = torch.nonzero(levels == level)[:, 0]
        pooled = roi_align(feature, boxes[index], batch_indices[index], *level_params)
        output = output.index_put((index,), pooled)
    return output

