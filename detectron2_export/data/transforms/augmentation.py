"""detectron2's ``Augmentation`` protocol: a policy that looks at the inputs and returns a Transform.

Only what the test-time pipeline needs: an :class:`AugInput` holding the image (and optionally
boxes and a semantic segmentation map), augmentations that read named attributes of it, and
``apply_augmentations`` to run a list of them.
"""

from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from .transform import Transform, TransformList

__all__ = [
    "Augmentation",
    "AugmentationList",
    "AugInput",
    "StandardAugInput",
    "TransformGen",
    "apply_augmentations",
    "apply_transform_gens",
]


class AugInput:
    """The inputs of an augmentation: image (HxW or HxWxC), boxes (Nx4 XYXY_ABS), sem_seg (HxW)."""

    def __init__(self, image: np.ndarray, *, boxes: np.ndarray | None = None, sem_seg: np.ndarray | None = None):
        if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
            got = getattr(image, "shape", type(image).__name__)
            raise ValueError(f"AugInput: image={got}, expected a HxW or HxWxC numpy array")
        self.image = image
        self.boxes = boxes
        self.sem_seg = sem_seg

    def transform(self, tfm: Transform) -> None:
        """Apply ``tfm`` in place to every attribute that is set."""
        self.image = tfm.apply_image(self.image)
        if self.boxes is not None:
            self.boxes = tfm.apply_box(self.boxes)
        if self.sem_seg is not None:
            self.sem_seg = tfm.apply_segmentation(self.sem_seg)

    def apply_augmentations(self, augmentations: Sequence["Augmentation | Transform"]) -> TransformList:
        return AugmentationList(augmentations)(self)


class Augmentation:
    """Subclasses implement ``get_transform(*args)``; the argument names pick AugInput attributes."""

    input_args: tuple[str, ...] | None = None

    def _init(self, params: dict[str, Any] | None = None) -> None:
        for k, v in (params or {}).items():
            if k != "self" and not k.startswith("_"):
                setattr(self, k, v)

    def get_transform(self, *args: Any) -> Transform:
        raise NotImplementedError

    def _input_args(self) -> tuple[str, ...]:
        if self.input_args is not None:
            return self.input_args
        params = inspect.signature(self.get_transform).parameters.values()
        return tuple(p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))

    def __call__(self, aug_input: AugInput) -> Transform:
        """Compute the transform from ``aug_input``, apply it to ``aug_input`` in place, return it."""
        args = []
        for name in self._input_args():
            if not hasattr(aug_input, name):
                raise AttributeError(
                    f"{type(self).__name__}.get_transform needs {name!r}, which {type(aug_input).__name__} lacks"
                )
            args.append(getattr(aug_input, name))
        tfm = self.get_transform(*args)
        if not isinstance(tfm, Transform):
            raise TypeError(f"{type(self).__name__}.get_transform returned {type(tfm).__name__}, expected a Transform")
        aug_input.transform(tfm)
        return tfm

    def __repr__(self) -> str:
        try:
            names = list(inspect.signature(self.__init__).parameters)
        except (TypeError, ValueError):
            return super().__repr__()
        attrs = ", ".join(f"{n}={getattr(self, n)!r}" for n in names if hasattr(self, n))
        return f"{type(self).__name__}({attrs})"


class _TransformToAug(Augmentation):
    """Lets a fixed Transform sit in a list of augmentations."""

    def __init__(self, tfm: Transform):
        self.tfm = tfm

    def get_transform(self, *args: Any) -> Transform:
        return self.tfm

    def _input_args(self) -> tuple[str, ...]:
        return ()


class AugmentationList(Augmentation):
    """Applies augmentations in order; returns the TransformList of what was done."""

    def __init__(self, augs: Sequence[Augmentation | Transform]):
        self.augs = [_TransformToAug(a) if isinstance(a, Transform) else a for a in augs]

    def __call__(self, aug_input: AugInput) -> TransformList:
        return TransformList([aug(aug_input) for aug in self.augs])

    def __repr__(self) -> str:
        return f"AugmentationList[{', '.join(map(repr, self.augs))}]"


def apply_augmentations(augmentations: Sequence[Augmentation | Transform], inputs: np.ndarray | AugInput):
    """Apply to an image (returns ``(image, transforms)``) or to an AugInput (``(aug_input, transforms)``)."""
    image_only = isinstance(inputs, np.ndarray)
    if image_only:
        inputs = AugInput(inputs)
    tfms = inputs.apply_augmentations(augmentations)
    return (inputs.image if image_only else inputs), tfms


apply_transform_gens = apply_augmentations
TransformGen = Augmentation  # detectron2's names before v0.3
StandardAugInput = AugInput
