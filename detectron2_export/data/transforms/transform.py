"""Deterministic transforms (fvcore / detectron2 ``Transform``): what was done to one image.

A transform is created for a specific image by an :class:`Augmentation` and can then be applied
to the image, to coordinates, boxes and segmentation maps of that image, and inverted.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...utils.training_only import training_only_class

__all__ = [
    "Transform",
    "NoOpTransform",
    "TransformList",
    "ResizeTransform",
    "HFlipTransform",
    "VFlipTransform",
    # training-only: importable, raise when built
    "BlendTransform",
    "ColorTransform",
    "CropTransform",
    "ExtentTransform",
    "GridSampleTransform",
    "PadTransform",
    "PILColorTransform",
    "RotationTransform",
    "ScaleTransform",
]


class Transform:
    """Base class: subclasses implement ``apply_image`` and ``apply_coords``."""

    def _set_attributes(self, params: dict[str, Any] | None = None) -> None:
        """Store every constructor argument (``locals()``) as an attribute of the same name."""
        for k, v in (params or {}).items():
            if k != "self" and not k.startswith("_"):
                setattr(self, k, v)

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """img: HxW or HxWxC array."""
        raise NotImplementedError

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        """coords: Nx2 float array of (x, y) in absolute pixels; may be modified in place."""
        raise NotImplementedError

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation)

    def apply_box(self, box: np.ndarray) -> np.ndarray:
        """box: Nx4 XYXY_ABS; the transformed box is the axis-aligned hull of the 4 moved corners."""
        idxs = np.array([(0, 1), (2, 1), (0, 3), (2, 3)]).flatten()
        coords = np.asarray(box).reshape(-1, 4)[:, idxs].reshape(-1, 2)
        coords = self.apply_coords(coords).reshape((-1, 4, 2))
        minxy = coords.min(axis=1)
        maxxy = coords.max(axis=1)
        return np.concatenate((minxy, maxxy), axis=1)

    def inverse(self) -> "Transform":
        raise NotImplementedError(f"{type(self).__name__}.inverse is not implemented")

    def __repr__(self) -> str:
        attrs = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({attrs})"


class NoOpTransform(Transform):
    """The identity: returned when an augmentation decides to do nothing."""

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return img

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def inverse(self) -> "Transform":
        return self


class _FlipTransform(Transform):
    """Mirror along one image axis; subclasses name the extent (``width`` / ``height``)."""

    _coord = 0  # the coordinate it negates: 0 for x, 1 for y

    def _extent(self) -> int:
        raise NotImplementedError

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """HxW(xC) image, or NxHxWxC images."""
        return np.flip(img, axis=(1 - self._coord) + (img.ndim > 3))

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords[:, self._coord] = self._extent() - coords[:, self._coord]
        return coords

    def inverse(self) -> "_FlipTransform":
        return self


class HFlipTransform(_FlipTransform):
    """Mirror left-right an image of the given ``width`` (test-time flip augmentation)."""

    _coord = 0

    def __init__(self, width: int):
        super().__init__()
        self._set_attributes(locals())

    def _extent(self) -> int:
        return self.width


class VFlipTransform(_FlipTransform):
    """Mirror upside-down an image of the given ``height``."""

    _coord = 1

    def __init__(self, height: int):
        super().__init__()
        self._set_attributes(locals())

    def _extent(self) -> int:
        return self.height


class TransformList(Transform):
    """Transforms applied one after the other."""

    def __init__(self, transforms: list[Transform]):
        super().__init__()
        flat: list[Transform] = []
        for t in transforms:
            flat.extend(t.transforms if isinstance(t, TransformList) else [t])
        self.transforms = flat

    def _apply(self, method: str, x: Any) -> Any:
        for t in self.transforms:
            x = getattr(t, method)(x)
        return x

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        return self._apply("apply_image", img)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return self._apply("apply_coords", coords)

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self._apply("apply_segmentation", segmentation)

    def apply_box(self, box: np.ndarray) -> np.ndarray:
        return self._apply("apply_box", box)

    def inverse(self) -> "TransformList":
        return TransformList([t.inverse() for t in reversed(self.transforms)])

    def __len__(self) -> int:
        return len(self.transforms)

    def __getitem__(self, idx: int) -> Transform:
        return self.transforms[idx]

    def __add__(self, other: Transform) -> "TransformList":
        return TransformList([self, other])


_PIL_TO_INTERPOLATE_MODE = {
    Image.NEAREST: "nearest",
    Image.BILINEAR: "bilinear",
    Image.BICUBIC: "bicubic",
}


class ResizeTransform(Transform):
    """Resize an image from (h, w) to (new_h, new_w).

    uint8 images go through PIL (what detectron2's models were trained and evaluated with);
    other dtypes through ``F.interpolate`` with ``align_corners=False``, as upstream.
    """

    def __init__(self, h: int, w: int, new_h: int, new_w: int, interp: int | None = None):
        super().__init__()
        if interp is None:
            interp = Image.BILINEAR
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray, interp: int | None = None) -> np.ndarray:
        if img.shape[:2] != (self.h, self.w):
            raise ValueError(
                f"ResizeTransform: image shape={img.shape[:2]}, expected ({self.h}, {self.w})"
            )
        if img.ndim > 4:
            raise ValueError(f"ResizeTransform: image ndim={img.ndim}, expected at most 4")
        method = interp if interp is not None else self.interp
        if img.dtype == np.uint8:
            return self._resize_pil(img, method)
        return self._resize_torch(img, method)

    def _resize_pil(self, img: np.ndarray, method: int) -> np.ndarray:
        single_channel = img.ndim > 2 and img.shape[2] == 1
        pil_image = Image.fromarray(img[:, :, 0], mode="L") if single_channel else Image.fromarray(img)
        ret = np.asarray(pil_image.resize((self.new_w, self.new_h), method))
        return np.expand_dims(ret, -1) if single_channel else ret

    def _resize_torch(self, img: np.ndarray, method: int) -> np.ndarray:
        if any(s < 0 for s in img.strides):
            img = np.ascontiguousarray(img)
        t = torch.from_numpy(img)
        shape = list(t.shape)
        shape_4d = shape[:2] + [1] * (4 - len(shape)) + shape[2:]
        t = t.view(shape_4d).permute(2, 3, 0, 1)  # hw(c) -> nchw
        mode = _PIL_TO_INTERPOLATE_MODE[method]
        align_corners = None if mode == "nearest" else False
        t = F.interpolate(t, (self.new_h, self.new_w), mode=mode, align_corners=align_corners)
        shape[:2] = (self.new_h, self.new_w)
        return t.permute(2, 3, 0, 1).reshape(shape).numpy()  # nchw -> hw(c)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords[:, 0] = coords[:, 0] * (self.new_w * 1.0 / self.w)
        coords[:, 1] = coords[:, 1] * (self.new_h * 1.0 / self.h)
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return self.apply_image(segmentation, interp=Image.NEAREST)

    def inverse(self) -> "ResizeTransform":
        return ResizeTransform(self.new_h, self.new_w, self.h, self.w, self.interp)


BlendTransform = training_only_class(__name__, "BlendTransform", Transform)
ColorTransform = training_only_class(__name__, "ColorTransform", Transform)
CropTransform = training_only_class(__name__, "CropTransform", Transform)
ExtentTransform = training_only_class(__name__, "ExtentTransform", Transform)
GridSampleTransform = training_only_class(__name__, "GridSampleTransform", Transform)
PadTransform = training_only_class(__name__, "PadTransform", Transform)
PILColorTransform = training_only_class(__name__, "PILColorTransform", Transform)
RotationTransform = training_only_class(__name__, "RotationTransform", Transform)
ScaleTransform = training_only_class(__name__, "ScaleTransform", Transform)
