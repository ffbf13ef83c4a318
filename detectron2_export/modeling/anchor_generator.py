"""Anchor generators (detectron2.modeling.anchor_generator).

Anchors are XYXY boxes in input-image pixels. A generator holds one set of "cell anchors" per
feature level (boxes centred on the origin) and shifts them to every grid location of that level.
"""

import collections.abc
import math
from typing import List, Sequence, Tuple

import torch
from torch import nn

from ..config.configurable import configurable
from ..layers import ShapeSpec, move_device_like
from ..structures import Boxes
from ..utils.registry import Registry

__all__ = [
    "ANCHOR_GENERATOR_REGISTRY",
    "BufferList",
    "DefaultAnchorGenerator",
    "build_anchor_generator",
]

ANCHOR_GENERATOR_REGISTRY = Registry("ANCHOR_GENERATOR")
ANCHOR_GENERATOR_REGISTRY.__doc__ = """
Registry for anchor generators, which produce anchors from a list of feature maps.

A registered object is called as ``obj(cfg, input_shape)`` with ``input_shape`` a list of
:class:`ShapeSpec` (one per feature level) and must return an ``nn.Module``.
"""


class BufferList(nn.Module):
    """A list of tensors registered as buffers, so that ``.to(device)`` moves them.

    The buffers are non-persistent: anchors are computed from the config, so they are not part of
    the state dict (detectron2 checkpoints have no anchor keys).
    """

    def __init__(self, buffers: Sequence[torch.Tensor]):
        super().__init__()
        for i, buffer in enumerate(buffers):
            self.register_buffer(str(i), buffer, persistent=False)

    def __len__(self) -> int:
        return len(self._buffers)

    def __iter__(self):
        return iter(self._buffers.values())


def _create_grid_offsets(
    size: List[int], stride: int, offset: float, target_device_tensor: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor]:
    """x and y of every location of an (H, W) grid, ``(offset + i) * stride``, row-major."""
    grid_height, grid_width = size
    shifts_x = move_device_like(
        torch.arange(offset * stride, grid_width * stride, step=stride, dtype=torch.float32),
        target_device_tensor,
    )
    shifts_y = move_device_like(
        torch.arange(offset * stride, grid_height * stride, step=stride, dtype=torch.float32),
        target_device_tensor,
    )
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")
    return shift_x.reshape(-1), shift_y.reshape(-1)


def _broadcast_params(params, num_features: int, name: str) -> List:
    """Expand ``sizes`` / ``aspect_ratios`` to one list per feature level.

    A flat list (``[32, 64]``) or a single inner list (``[[32, 64]]``) is used for every level;
    otherwise there must be exactly one inner list per level.
    """
    if not isinstance(params, collections.abc.Sequence) or isinstance(params, str):
        raise ValueError(f"anchor generator: {name}={params!r}, expected a list")
    if not len(params):
        raise ValueError(f"anchor generator: {name}=[], expected a non-empty list")
    if not isinstance(params[0], collections.abc.Sequence):  # list[float]
        return [params] * num_features
    if len(params) == 1:
        return list(params) * num_features
    if len(params) != num_features:
        raise ValueError(
            f"anchor generator: {name} has {len(params)} lists, expected 1 or one per input "
            f"feature ({num_features})"
        )
    return list(params)


@ANCHOR_GENERATOR_REGISTRY.register()
class DefaultAnchorGenerator(nn.Module):
    """Axis-aligned anchors of several sizes and aspect ratios at every feature-map location.

    Args:
        sizes: anchor sizes (sqrt of the area, in input pixels); a list per level, or one list
            for all levels.
        aspect_ratios: height / width ratios; a list per level, or one list for all levels.
        strides: stride of each feature level.
        offset: position of the first anchor centre, in units of the stride: 0.0 puts it at the
            top-left pixel's corner (Detectron/Caffe2 convention), 0.5 at the first cell's centre.
    """

    box_dim: torch.jit.Final[int] = 4
    """Number of box coordinates per anchor (XYXY)."""

    @configurable
    def __init__(self, *, sizes, aspect_ratios, strides: Sequence[int], offset: float = 0.5):
        super().__init__()
        self.strides = strides
        self.num_features = len(self.strides)
        sizes = _broadcast_params(sizes, self.num_features, "sizes")
        aspect_ratios = _broadcast_params(aspect_ratios, self.num_features, "aspect_ratios")
        self.cell_anchors = self._calculate_anchors(sizes, aspect_ratios)
        self.offset = offset
        if not 0.0 <= self.offset < 1.0:
            raise ValueError(f"DefaultAnchorGenerator: offset={offset}, expected 0.0 <= offset < 1.0")

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        return {
            "sizes": cfg.MODEL.ANCHOR_GENERATOR.SIZES,
            "aspect_ratios": cfg.MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS,
            "strides": [x.stride for x in input_shape],
            "offset": cfg.MODEL.ANCHOR_GENERATOR.OFFSET,
        }

    def _calculate_anchors(self, sizes, aspect_ratios) -> BufferList:
        cell_anchors = [self.generate_cell_anchors(s, a).float() for s, a in zip(sizes, aspect_ratios)]
        return BufferList(cell_anchors)

    @property
    @torch.jit.unused
    def num_cell_anchors(self) -> List[int]:
        """Alias of :attr:`num_anchors`."""
        return self.num_anchors

    @property
    @torch.jit.unused
    def num_anchors(self) -> List[int]:
        """Number of anchors per location, for each feature level (len(sizes) * len(ratios))."""
        return [len(cell_anchors) for cell_anchors in self.cell_anchors]

    def _grid_anchors(self, grid_sizes: List[List[int]]) -> List[torch.Tensor]:
        """Per level, an (H * W * A, 4) tensor: location-major, the A cell anchors innermost."""
        anchors = []
        buffers: List[torch.Tensor] = [x[1] for x in self.cell_anchors.named_buffers()]
        for size, stride, base_anchors in zip(grid_sizes, self.strides, buffers):
            shift_x, shift_y = _create_grid_offsets(size, stride, self.offset, base_anchors)
            shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
            anchors.append((shifts.view(-1, 1, 4) + base_anchors.view(1, -1, 4)).reshape(-1, 4))
        return anchors

    def generate_cell_anchors(
        self, sizes: Sequence[float] = (32, 64, 128, 256, 512), aspect_ratios: Sequence[float] = (0.5, 1, 2)
    ) -> torch.Tensor:
        """(len(sizes) * len(aspect_ratios), 4) XYXY boxes centred on (0, 0), size-major.

        An anchor of size s and ratio a has area s**2 and h / w = a: w = sqrt(s**2 / a), h = a * w.
        """
        anchors = []
        for size in sizes:
            area = size**2.0
            for aspect_ratio in aspect_ratios:
                w = math.sqrt(area / aspect_ratio)
                h = aspect_ratio * w
                anchors.append([-w / 2.0, -h / 2.0, w / 2.0, h / 2.0])
        return torch.tensor(anchors)

    def forward(self, features: List[torch.Tensor]) -> List[Boxes]:
        """features: per-level (N, C, H, W) maps -> per-level :class:`Boxes` of H * W * A anchors.

        Anchors depend only on the spatial size of each map, so they are shared by all images.
        """
        grid_sizes = [feature_map.shape[-2:] for feature_map in features]
        anchors_over_all_feature_maps = self._grid_anchors(grid_sizes)
        return [Boxes(x) for x in anchors_over_all_feature_maps]


def build_anchor_generator(cfg, input_shape: List[ShapeSpec]) -> nn.Module:
    """Build the anchor generator named by ``cfg.MODEL.ANCHOR_GENERATOR.NAME``."""
    anchor_generator = cfg.MODEL.ANCHOR_GENERATOR.NAME
    return ANCHOR_GENERATOR_REGISTRY.get(anchor_generator)(cfg, input_shape)
