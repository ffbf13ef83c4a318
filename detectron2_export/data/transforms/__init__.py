"""Transforms and test-time augmentations, as ``detectron2.data.transforms`` (the training-only
augmentations and transforms import, and raise when built)."""

from . import augmentation, augmentation_impl, transform
from .transform import (
    BlendTransform,
    ColorTransform,
    CropTransform,
    ExtentTransform,
    GridSampleTransform,
    HFlipTransform,
    NoOpTransform,
    PadTransform,
    PILColorTransform,
    ResizeTransform,
    RotationTransform,
    ScaleTransform,
    Transform,
    TransformList,
    VFlipTransform,
)
from .augmentation import (
    apply_augmentations,
    apply_transform_gens,
    AugInput,
    Augmentation,
    AugmentationList,
    StandardAugInput,
    TransformGen,
)
from .augmentation_impl import (
    FixedSizeCrop,
    MinIoURandomCrop,
    RandomApply,
    RandomBrightness,
    RandomContrast,
    RandomCrop,
    RandomCrop_CategoryAreaConstraint,
    RandomExtent,
    RandomFlip,
    RandomLighting,
    RandomResize,
    RandomRotation,
    RandomSaturation,
    Resize,
    ResizeScale,
    ResizeShortestEdge,
)

__all__ = [*transform.__all__, *augmentation.__all__, *augmentation_impl.__all__]
