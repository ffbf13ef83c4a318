"""Image reading and the test-time augmentation list, as ``detectron2.data.detection_utils``.

The annotation-side helpers (turning annotations into training targets, cropping around an
instance) are training-only: importable, raising :class:`TrainingOnlyError` when called.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from detectron2_export.errors import DatasetError

from ..utils.training_only import TrainingOnlyError, training_only_function
from . import transforms as T
from .catalog import MetadataCatalog

__all__ = [
    "SizeMismatchError",
    "ImageFileError",
    "convert_PIL_to_numpy",
    "convert_image_to_rgb",
    "read_image",
    "check_image_size",
    "check_metadata_consistency",
    "build_augmentation",
    "build_transform_gen",
    "create_keypoint_hflip_indices",
    "transform_proposals",
    "transform_instance_annotations",
    "transform_keypoint_annotations",
    "annotations_to_instances",
    "annotations_to_instances_rotated",
    "filter_empty_instances",
    "gen_crop_transform_with_instance",
]

# ITU-R BT.601 RGB -> YUV and back, as upstream ("YUV-BT.601" input format)
_M_RGB2YUV = [[0.299, 0.587, 0.114], [-0.14713, -0.28886, 0.436], [0.615, -0.51499, -0.10001]]
_M_YUV2RGB = [[1.0, 0.0, 1.13983], [1.0, -0.39465, -0.58060], [1.0, 2.03211, 0.0]]

# Annotations -> training targets, and proposals files (not loaded here): training-only.
transform_proposals = training_only_function(__name__, "transform_proposals")
transform_instance_annotations = training_only_function(__name__, "transform_instance_annotations")
transform_keypoint_annotations = training_only_function(__name__, "transform_keypoint_annotations")
annotations_to_instances = training_only_function(__name__, "annotations_to_instances")
annotations_to_instances_rotated = training_only_function(__name__, "annotations_to_instances_rotated")
filter_empty_instances = training_only_function(__name__, "filter_empty_instances")
gen_crop_transform_with_instance = training_only_function(__name__, "gen_crop_transform_with_instance")

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


def convert_image_to_rgb(image: np.ndarray | torch.Tensor, format: str) -> np.ndarray:
    """An HxWxC image in the model's input ``format`` -> RGB (for visualisation).

    BGR: channels reversed; YUV-BT.601: the inverse BT.601 matrix, times 255 (float);
    any PIL mode ("RGB", "L", ...): cast to uint8 and converted by PIL.
    """
    if isinstance(image, torch.Tensor):
        image = image.cpu().numpy()
    if format == "BGR":
        return image[:, :, [2, 1, 0]]
    if format == "YUV-BT.601":
        return np.dot(image, np.array(_M_YUV2RGB).T) * 255.0
    if format == "L":
        image = image[:, :, 0]
    return np.asarray(Image.fromarray(image.astype(np.uint8), mode=format).convert("RGB"))


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Rotate/flip as the EXIF orientation tag says (only that tag; PIL's exif_transpose has bugs)."""
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block must not make the image unreadable
        return image
    method = _EXIF_TRANSPOSE.get(exif.get(_EXIF_ORIENT)) if exif is not None else None
    return image.transpose(method) if method is not None else image


class ImageFileError(DatasetError, OSError):
    """An image file that PIL cannot decode (truncated, corrupt, not an image, a decompression bomb);
    an OSError too, as PIL's own errors are."""


def read_image(file_name: str | os.PathLike, format: str | None = None) -> np.ndarray:
    """Read an image file into an HxWxC uint8 array in ``format`` (e.g. "BGR", cfg.INPUT.FORMAT)."""
    with open(file_name, "rb") as f:
        try:
            image = Image.open(f)
            image.load()  # PIL decodes lazily: a truncated file would fail later, naming no file
            image = _apply_exif_orientation(image)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
            raise ImageFileError(f"{os.fspath(file_name)}: cannot read the image ({type(e).__name__}: {e})") from e
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
        raise TrainingOnlyError(
            "build_augmentation: is_train=True, expected False; detectron2_export is inference-only"
        )
    min_size = cfg.INPUT.MIN_SIZE_TEST
    max_size = cfg.INPUT.MAX_SIZE_TEST
    return [T.ResizeShortestEdge(min_size, max_size, "choice")]


build_transform_gen = build_augmentation  # detectron2's older name


def check_metadata_consistency(key: str, dataset_names: Sequence[str]) -> None:
    """Raise :class:`DatasetError` (a ValueError) if the datasets disagree on metadata ``key``."""
    from .build import _check_metadata_consistency  # build imports this module (via DatasetMapper)

    _check_metadata_consistency(key, list(dataset_names))


def create_keypoint_hflip_indices(dataset_names: str | Sequence[str]) -> list[int]:
    """For each keypoint, the index of its mirror image under a horizontal flip (from the
    datasets' ``keypoint_names`` / ``keypoint_flip_map``; unpaired keypoints map to themselves)."""
    if isinstance(dataset_names, str):
        dataset_names = [dataset_names]
    check_metadata_consistency("keypoint_names", dataset_names)
    check_metadata_consistency("keypoint_flip_map", dataset_names)
    meta = MetadataCatalog.get(dataset_names[0])
    names = list(meta.keypoint_names)
    pairs = dict(meta.keypoint_flip_map)
    pairs.update({right: left for left, right in pairs.items()})
    return [names.index(pairs.get(name, name)) for name in names]
