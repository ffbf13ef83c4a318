"""Multi-level RoI pooling (detectron2.modeling.poolers).

Each box is pooled from one FPN level chosen by its size (the FPN paper's eq. 1), or from the only
level when there is one (C4/DC5 models).
"""

from __future__ import annotations

import math
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import nn
from torchvision.ops import RoIPool

from ..layers import ROIAlign, cat, nonzero_tuple, shapes_to_tensor
from ..structures import Boxes

__all__ = ["ROIPooler", "assign_boxes_to_levels", "convert_boxes_to_pooler_format"]


def assign_boxes_to_levels(
    box_lists: List[Boxes],
    min_level: int,
    max_level: int,
    canonical_box_size: int,
    canonical_level: int,
) -> torch.Tensor:
    """The pyramid level each box is pooled from, as an index relative to ``min_level``.

    level = floor(canonical_level + log2(sqrt(area) / canonical_box_size + 1e-8)), clamped to
    [min_level, max_level]: a 224x224 box goes to level 4 (P4), one twice as large to P5.

    Returns:
        (M,) int64 tensor, M = total number of boxes, values in [0, max_level - min_level].
    """
    box_sizes = torch.sqrt(cat([boxes.area() for boxes in box_lists]))
    # 1e-8 avoids log2(0) for degenerate boxes
    level_assignments = torch.floor(canonical_level + torch.log2(box_sizes / canonical_box_size + 1e-8))
    level_assignments = torch.clamp(level_assignments, min=min_level, max=max_level)
    return level_assignments.to(torch.int64) - min_level


@torch.jit.script_if_tracing
def _convert_boxes_to_pooler_format(boxes: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Prepend to each box the index of the image it belongs to (``sizes`` boxes per image).

    Scripted while tracing, so that ``boxes.device`` is not recorded as a constant device.
    """
    sizes = sizes.to(device=boxes.device)
    indices = torch.repeat_interleave(torch.arange(len(sizes), dtype=boxes.dtype, device=boxes.device), sizes)
    return cat([indices[:, None], boxes], dim=1)


def convert_boxes_to_pooler_format(box_lists: List[Boxes]) -> torch.Tensor:
    """Per-image :class:`Boxes` (or RotatedBoxes) -> one (M, 5) (or (M, 6)) tensor of rois.

    Column 0 is the batch index of the box, the rest are the box coordinates, the format of
    ``ROIAlign`` and Caffe2's ``RoIAlign``.
    """
    boxes = torch.cat([x.tensor for x in box_lists], dim=0)
    # len() of Boxes is a tensor while tracing; shapes_to_tensor keeps it dynamic. No device here:
    # it would be recorded as a constant; _convert_boxes_to_pooler_format moves sizes to the boxes.
    sizes = shapes_to_tensor([x.__len__() for x in box_lists])
    return _convert_boxes_to_pooler_format(boxes, sizes)


@torch.jit.script_if_tracing  # so like_tensor.device is not recorded as a constant device
def _create_zeros(
    batch_target: Optional[torch.Tensor], channels: int, height: int, width: int, like_tensor: torch.Tensor
) -> torch.Tensor:
    batches = batch_target.shape[0] if batch_target is not None else 0
    return torch.zeros((batches, channels, height, width), dtype=like_tensor.dtype, device=like_tensor.device)


def _build_level_poolers(
    pooler_type: str, output_size: Tuple[int, int], scales: Sequence[float], sampling_ratio: int
) -> nn.ModuleList:
    """One pooling module per level (a ModuleList, so tracing and scripting can iterate over it)."""
    if pooler_type == "ROIAlign":
        return nn.ModuleList(
            ROIAlign(output_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=False)
            for scale in scales
        )
    if pooler_type == "ROIAlignV2":
        return nn.ModuleList(
            ROIAlign(output_size, spatial_scale=scale, sampling_ratio=sampling_ratio, aligned=True)
            for scale in scales
        )
    if pooler_type == "ROIPool":
        return nn.ModuleList(RoIPool(output_size, spatial_scale=scale) for scale in scales)
    if pooler_type == "ROIAlignRotated":
        from ..layers import ROIAlignRotated  # only rotated models need it

        return nn.ModuleList(
            ROIAlignRotated(output_size, spatial_scale=scale, sampling_ratio=sampling_ratio)
            for scale in scales
        )
    raise ValueError(
        f"ROIPooler: pooler_type={pooler_type!r}, expected one of "
        "'ROIAlign', 'ROIAlignV2', 'ROIPool', 'ROIAlignRotated'"
    )


class ROIPooler(nn.Module):
    """Pools a fixed-size feature for each box from a list of feature levels.

    Args:
        output_size: (height, width) of the pooled features, or one int for both.
        scales: 1 / stride of each input level, from high to low resolution; consecutive levels
            must differ by a factor 2 (scale 1/2**k is level k).
        sampling_ratio: ``sampling_ratio`` of ROIAlign (0 = adaptive).
        pooler_type: "ROIAlignV2" (aligned, detectron2's default), "ROIAlign" (Detectron's
            misaligned version), "ROIPool" or "ROIAlignRotated".
        canonical_box_size, canonical_level: a box of this size (sqrt of area) maps to this level.
    """

    def __init__(
        self,
        output_size: Union[int, Tuple[int, int], List[int]],
        scales: Sequence[float],
        sampling_ratio: int,
        pooler_type: str,
        canonical_box_size: int = 224,
        canonical_level: int = 4,
    ):
        super().__init__()
        if isinstance(output_size, int):
            output_size = (output_size, output_size)
        if not (
            len(output_size) == 2 and isinstance(output_size[0], int) and isinstance(output_size[1], int)
        ):
            raise ValueError(f"ROIPooler: output_size={output_size!r}, expected an int or two ints")
        self.output_size = tuple(output_size)
        self.level_poolers = _build_level_poolers(pooler_type, self.output_size, scales, sampling_ratio)

        # Map scale (1/stride) to level; the strides must be powers of 2 forming a pyramid.
        min_level = -(math.log2(scales[0]))
        max_level = -(math.log2(scales[-1]))
        if not (math.isclose(min_level, int(min_level)) and math.isclose(max_level, int(max_level))):
            raise ValueError(f"ROIPooler: scales={list(scales)}, expected 1 / (a power of 2)")
        self.min_level = int(min_level)
        self.max_level = int(max_level)
        if len(scales) != self.max_level - self.min_level + 1:
            raise ValueError(
                f"ROIPooler: scales={list(scales)}, expected one scale per level from "
                f"{self.min_level} to {self.max_level} (a pyramid)"
            )
        if not 0 <= self.min_level <= self.max_level:
            raise ValueError(f"ROIPooler: scales={list(scales)}, expected decreasing scales <= 1")
        self.canonical_level = canonical_level
        if canonical_box_size <= 0:
            raise ValueError(f"ROIPooler: canonical_box_size={canonical_box_size}, expected > 0")
        self.canonical_box_size = canonical_box_size

    def forward(self, x: List[torch.Tensor], box_lists: List[Boxes]) -> torch.Tensor:
        """Pool the boxes of every image.

        Args:
            x: per-level (N, C, Hl, Wl) feature maps, in the order of ``scales``.
            box_lists: N :class:`Boxes` (or RotatedBoxes), one per image, in input pixels.

        Returns:
            (M, C, output_size[0], output_size[1]): M = total number of boxes, in the order of
            ``box_lists`` (image by image).
        """
        num_level_assignments = len(self.level_poolers)
        if not (isinstance(x, list) and isinstance(box_lists, list)):
            raise TypeError("ROIPooler: x and box_lists must be lists")
        if len(x) != num_level_assignments:
            raise ValueError(
                f"ROIPooler: {len(x)} feature maps, expected {num_level_assignments} "
                "(one per level of scales)"
            )
        if len(box_lists) != x[0].size(0):
            raise ValueError(
                f"ROIPooler: {len(box_lists)} box lists, expected one per image ({x[0].size(0)})"
            )
        if len(box_lists) == 0:
            return _create_zeros(None, x[0].shape[1], *self.output_size, x[0])

        pooler_fmt_boxes = convert_boxes_to_pooler_format(box_lists)

        if num_level_assignments == 1:
            return self.level_poolers[0](x[0], pooler_fmt_boxes)

        level_assignments = assign_boxes_to_levels(
            box_lists, self.min_level, self.max_level, self.canonical_box_size, self.canonical_level
        )

        num_channels = x[0].shape[1]
        output_size = self.output_size[0]
        output = _create_zeros(pooler_fmt_boxes, num_channels, output_size, output_size, x[0])

        for level, pooler in enumerate(self.level_poolers):
            inds = nonzero_tuple(level_assignments == level)[0]
            pooler_fmt_boxes_level = pooler_fmt_boxes[inds]
            # index_put_ rather than output[inds] = ..., which traces wrongly (pytorch/issues/49852)
            output.index_put_((inds,), pooler(x[level], pooler_fmt_boxes_level))
        return output
