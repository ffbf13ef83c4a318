"""The test-time augmentation detectron2 uses: ResizeShortestEdge."""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
from PIL import Image

from .augmentation import Augmentation
from .transform import NoOpTransform, ResizeTransform, Transform

__all__ = ["ResizeShortestEdge"]


class ResizeShortestEdge(Augmentation):
    """Scale the shorter side to a (sampled) length, capping the longer side at ``max_size``.

    ``sample_style="range"`` samples an int in ``[min, max]`` of ``short_edge_length``;
    ``"choice"`` picks one of its values. A sampled length of 0 means "do not resize".
    """

    def __init__(
        self,
        short_edge_length: int | Sequence[int],
        max_size: int = sys.maxsize,
        sample_style: str = "range",
        interp: int = Image.BILINEAR,
    ):
        super().__init__()
        if sample_style not in ("range", "choice"):
            raise ValueError(f"ResizeShortestEdge: sample_style={sample_style!r}, expected 'range' or 'choice'")
        self.is_range = sample_style == "range"
        if isinstance(short_edge_length, int):
            short_edge_length = (short_edge_length, short_edge_length)
        if self.is_range and len(short_edge_length) != 2:
            raise ValueError(
                f"ResizeShortestEdge: short_edge_length={short_edge_length!r}, "
                "expected two values (min, max) with sample_style='range'"
            )
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if self.is_range:
            size = np.random.randint(self.short_edge_length[0], self.short_edge_length[1] + 1)
        else:
            size = np.random.choice(self.short_edge_length)
        if size == 0:
            return NoOpTransform()
        newh, neww = ResizeShortestEdge.get_output_shape(h, w, size, self.max_size)
        return ResizeTransform(h, w, newh, neww, self.interp)

    @staticmethod
    def get_output_shape(oldh: int, oldw: int, short_edge_length: int, max_size: int) -> tuple[int, int]:
        """Output (h, w); rounds half up exactly as detectron2 (``int(x + 0.5)``)."""
        size = short_edge_length * 1.0
        scale = size / min(oldh, oldw)
        if oldh < oldw:
            newh, neww = size, scale * oldw
        else:
            newh, neww = scale * oldh, size
        if max(newh, neww) > max_size:
            scale = max_size * 1.0 / max(newh, neww)
            newh = newh * scale
            neww = neww * scale
        return int(newh + 0.5), int(neww + 0.5)
