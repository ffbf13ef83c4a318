"""The test-time augmentations detectron2 uses: ResizeShortestEdge, and Resize to a fixed size."""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .augmentation import Augmentation
from .transform import HFlipTransform, NoOpTransform, ResizeTransform, Transform, VFlipTransform

from ...utils.training_only import training_only_class

__all__ = [
    "RandomFlip",
    "Resize",
    "ResizeShortestEdge",
    # training-only: importable, raise when built
    "FixedSizeCrop",
    "MinIoURandomCrop",
    "RandomApply",
    "RandomBrightness",
    "RandomContrast",
    "RandomCrop",
    "RandomCrop_CategoryAreaConstraint",
    "RandomExtent",
    "RandomLighting",
    "RandomResize",
    "RandomRotation",
    "RandomSaturation",
    "ResizeScale",
]


class RandomFlip(Augmentation):
    """Flip the image horizontally (or vertically) with probability ``prob``; ``prob=1.0`` is the
    flip of test-time augmentation."""

    def __init__(self, prob: float = 0.5, *, horizontal: bool = True, vertical: bool = False):
        super().__init__()
        if horizontal == vertical:
            raise ValueError(
                f"RandomFlip: horizontal={horizontal}, vertical={vertical}, expected exactly one of them True"
            )
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> Transform:
        h, w = image.shape[:2]
        if np.random.uniform() >= self.prob:
            return NoOpTransform()
        return HFlipTransform(w) if self.horizontal else VFlipTransform(h)


class Resize(Augmentation):
    """Resize every image to one fixed ``shape`` = (h, w), or (shape, shape) for an int."""

    def __init__(self, shape: int | Sequence[int], interp: int = Image.BILINEAR):
        if isinstance(shape, int):
            shape = (shape, shape)
        shape = tuple(shape)
        if len(shape) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in shape):
            raise ValueError(f"Resize: shape={shape!r}, expected an int or (h, w) of positive ints")
        self._init(locals())

    def get_transform(self, image: np.ndarray) -> ResizeTransform:
        return ResizeTransform(image.shape[0], image.shape[1], self.shape[0], self.shape[1], self.interp)


class ResizeShortestEdge(Augmentation):
    """Scale the shorter side to a (sampled) length, capping the longer side at ``max_size``.

    ``sample_style="range"`` samples an int in ``[min, max]`` of ``short_edge_length``;
    ``"choice"`` picks one of its values. A sampled length of 0 means "do not resize".

    Only the static ``get_output_shape`` is compiled when a scripted function calls it; the rest
    (numpy, PIL) is marked unused for TorchScript, as upstream.
    """

    @torch.jit.unused
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

    @torch.jit.unused
    def get_transform(self, image):  # unannotated: TorchScript compiles an unused method's signature
        """image: HxW(xC) array -> the resize for it (a NoOpTransform when the sampled length is 0)."""
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


FixedSizeCrop = training_only_class(__name__, "FixedSizeCrop", Augmentation)
MinIoURandomCrop = training_only_class(__name__, "MinIoURandomCrop", Augmentation)
RandomApply = training_only_class(__name__, "RandomApply", Augmentation)
RandomBrightness = training_only_class(__name__, "RandomBrightness", Augmentation)
RandomContrast = training_only_class(__name__, "RandomContrast", Augmentation)
RandomCrop = training_only_class(__name__, "RandomCrop", Augmentation)
RandomCrop_CategoryAreaConstraint = training_only_class(__name__, "RandomCrop_CategoryAreaConstraint", Augmentation)
RandomExtent = training_only_class(__name__, "RandomExtent", Augmentation)
RandomLighting = training_only_class(__name__, "RandomLighting", Augmentation)
RandomResize = training_only_class(__name__, "RandomResize", Augmentation)
RandomRotation = training_only_class(__name__, "RandomRotation", Augmentation)
RandomSaturation = training_only_class(__name__, "RandomSaturation", Augmentation)
ResizeScale = training_only_class(__name__, "ResizeScale", Augmentation)
