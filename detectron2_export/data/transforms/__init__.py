"""Transforms and test-time augmentations, as ``detectron2.data.transforms``."""

from .augmentation import Augmentation, AugmentationList, AugInput, apply_augmentations, apply_transform_gens
from .augmentation_impl import Resize, ResizeShortestEdge
from .transform import NoOpTransform, ResizeTransform, Transform, TransformList

__all__ = [
    "Augmentation",
    "AugmentationList",
    "AugInput",
    "apply_augmentations",
    "apply_transform_gens",
    "Resize",
    "ResizeShortestEdge",
    "NoOpTransform",
    "ResizeTransform",
    "Transform",
    "TransformList",
]
