"""Anchors of every feature level computed in the graph from the feature-map sizes, as
``DefaultAnchorGenerator``, plus which anchors belong to each image of a batch."""

from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from ...errors import ExportError
from .extent import ceil_div, inside


def _cell_anchors(anchor_generator) -> List[Tensor]:
    if type(anchor_generator).__name__ != "DefaultAnchorGenerator":
        raise ExportError(
            f"export_onnx: anchor generator {type(anchor_generator).__name__}, expected "
            "DefaultAnchorGenerator (rotated anchors have no standard ONNX lowering)"
        )
    return [x for x in anchor_generator.cell_anchors]


def grid_anchors(anchor_generator, features: List[Tensor]) -> List[Tensor]:
    """Per level, (Hi * Wi * A, 4) XYXY anchors: location-major, the A cell anchors innermost."""
    anchors = []
    for feature, stride, cell in zip(features, anchor_generator.strides, _cell_anchors(anchor_generator)):
        offset = anchor_generator.offset * stride
        shifts_x = torch.arange(feature.shape[3], dtype=torch.float32, device=feature.device) * stride + offset
        shifts_y = torch.arange(feature.shape[2], dtype=torch.float32, device=feature.device) * stride + offset
        shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
        shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
        anchors.append((shifts[:, None, :] + cell[None, :, :]).reshape(-1, 4))
    return anchors


def anchors_inside(
    features: List[Tensor], strides: List[int], num_anchors: int, padded_sizes: Tensor
) -> List[Tensor]:
    """Per level, an (N, Hi * Wi * A) bool mask: the anchor's location lies in the feature map that
    image alone would have (ceil of its padded size over the stride: stride-2 convs, pools and the
    FPN's P6 all round up)."""
    masks = []
    for feature, stride in zip(features, strides):
        mask = inside(feature, ceil_div(padded_sizes, stride))  # (N, Hi, Wi)
        masks.append(mask[:, :, :, None].expand(-1, -1, -1, num_anchors).reshape(mask.shape[0], -1))
    return masks


def per_anchor(x: Tensor, dim: int) -> Tensor:
    """A head's (N, A*dim, H, W) prediction -> (N, H*W*A, dim), in the anchors' order (as
    detectron2's ``permute_to_N_HWA_K`` and RPN's reshapes)."""
    n, height, width = x.shape[0], x.shape[2], x.shape[3]
    return x.reshape(n, -1, dim, height, width).permute(0, 3, 4, 1, 2).reshape(n, -1, dim)


def anchor_strides(anchor_generator) -> Tuple[List[int], int]:
    """The strides of the levels and the number of cell anchors per location (the same on every level)."""
    counts = {len(x) for x in _cell_anchors(anchor_generator)}
    if len(counts) != 1:
        raise ExportError(f"export_onnx: cell anchors per level {sorted(counts)}, expected one count for all levels")
    return list(anchor_generator.strides), counts.pop()
