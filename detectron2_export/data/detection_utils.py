"""Image reading and the test-time augmentation list, as ``detectron2.data.detection_utils``."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image

from detectron2_export.errors import DatasetError

from . import transforms as T

__all__ = [
    "SizeMismatchError",
    "convert_PIL_to_numpy",
    "read_image",
    "check_image_size",
    "build_augmentation",
]

# ITU-R BT.601 RGB -> YUV, as upstream ("YUV-BT.601" input format)
_M_RGB2YUV = [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]

_EXIF_ORIENT = 274  # the EXIF tag that says how the camera was held
_EXIF_TRANSPOSE = {
    2: Image.FLIP_LEFT_RIGHT,
    3: Image.ROTATE_180,
    4: Image.FLIP_TOP_BOTTOM,
    5: Image.TRANSPOSE,
    6: Image.ROTATE_270,
    7: Image.TRANSVERSE,
    8: Image.ROTATE_90,
}


class SizeMismatchError(DatasetError):
    """An image's size differs from the height/width its annotation records."""


def convert_PIL_to_numpy(image: Image.Image, format: str | None) -> np.ndarray:
    """PIL image -> HxWxC array (HxW if format is None and the image is single-channel).

    format: a PIL mode ("RGB", "L", ...), "BGR" (RGB with channels flipped) or "YUV-BT.601"
    (float, RGB/255 times the BT.601 matrix); None keeps the file's own mode.
    """
    if format is not None:
        image = image.convert("RGB" if format in ("BGR", "YUV-BT.601") else format)
    array = np.asarray(image)
    if format == "L":
        array = np.expand_dims(array, -1)  # PIL drops the channel dim for "L"
    elif format == "BGR":
        array = array[:, :, ::-1]
    elif format == "YUV-BT.601":
        array = np.dot(array / 255.0, np.array(_M_RGB2YUV).T)
    return array


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says (only that tag; PIL's exif_transpose has bugs)."""
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block must not make the image unreadable
        return image
    method = _EXIF_TRANSPOSE.get(exif.get(_EXIF_ORIENT)) if exif is not None else None
    return image.transpose(method) if method is not None else image


def read_image(file_name: str | os.PathLike, format: str | None = None) -> np.ndarray:
    """Read an image file into an HxWxC uint8 array in ``format`` (e.g. "BGR", cfg.INPUT.FORMAT)."""
    with open(file_name, "rb") as f:
        image = Image.open(f)
        image = _apply_exif_orientation(image)
        return convert_PIL_to_numpy(image, format)


def check_image_size(dataset_dict: dict[str, Any], image: np.ndarray) -> None:
    """Raise if the image disagrees with the dict's width/height; fill them in when absent."""
    if "width" in dataset_dict or "height" in dataset_dict:
        image_wh = (image.shape[1], image.shape[0])
        expected_wh = (dataset_dict.get("width"), dataset_dict.get("height"))
        if image_wh != expected_wh:
            where = dataset_dict.get("file_name", "image")
            raise SizeMismatchError(
                f"{where}: (width, height)={image_wh}, expected {expected_wh} from the annotation; "
                "please check the width/height in your annotation"
            )
    dataset_dict.setdefault("width", image.shape[1])
    dataset_dict.setdefault("height", image.shape[0])


def build_augmentation(cfg: Any, is_train: bool) -> list[T.Augmentation]:
    """The test-time resize from ``cfg.INPUT.MIN_SIZE_TEST`` / ``MAX_SIZE_TEST`` (inference only)."""
    if is_train:
        raise NotImplementedError(
            "build_augmentation: is_train=True, expected False; detectron2_export is inference-only"
        )
    min_size = cfg.INPUT.MIN_SIZE_TEST
    max_size = cfg.INPUT.MAX_SIZE_TEST
    return [T.ResizeShortestEdge(min_size, max_size, "choice")]
