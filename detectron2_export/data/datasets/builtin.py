"""Datasets registered on import: the bundled ``shapes_val`` and upstream's COCO names.

COCO files are looked up under ``$DETECTRON2_DATASETS`` (default "datasets") in detectron2's
layout (``coco/annotations/instances_val2017.json``, ``coco/val2017/`` ...). Nothing is read at
registration; a missing file raises MissingDatasetFileError, naming it, when the dataset is loaded.
"""

from __future__ import annotations

import os
from typing import Callable

from ..catalog import DatasetCatalog, MetadataCatalog
from .builtin_meta import get_builtin_metadata
from .coco import register_coco_instances
from .coco_panoptic import register_coco_panoptic_separated
from .paths import bundled_datasets_dir, datasets_root, require_path

__all__ = ["register_all_coco", "register_shapes"]

_PREDEFINED_SPLITS_COCO = {
    "coco": {
        "coco_2014_train": ("coco/train2014", "coco/annotations/instances_train2014.json"),
        "coco_2014_val": ("coco/val2014", "coco/annotations/instances_val2014.json"),
        "coco_2014_minival": ("coco/val2014", "coco/annotations/instances_minival2014.json"),
        "coco_2014_valminusminival": ("coco/val2014", "coco/annotations/instances_valminusminival2014.json"),
        "coco_2017_train": ("coco/train2017", "coco/annotations/instances_train2017.json"),
        "coco_2017_val": ("coco/val2017", "coco/annotations/instances_val2017.json"),
        "coco_2017_test": ("coco/test2017", "coco/annotations/image_info_test2017.json"),
        "coco_2017_test-dev": ("coco/test2017", "coco/annotations/image_info_test-dev2017.json"),
        "coco_2017_val_100": ("coco/val2017", "coco/annotations/instances_val2017_100.json"),
    },
    "coco_person": {
        "keypoints_coco_2014_train": ("coco/train2014", "coco/annotations/person_keypoints_train2014.json"),
        "keypoints_coco_2014_val": ("coco/val2014", "coco/annotations/person_keypoints_val2014.json"),
        "keypoints_coco_2014_minival": ("coco/val2014", "coco/annotations/person_keypoints_minival2014.json"),
        "keypoints_coco_2014_valminusminival": (
            "coco/val2014",
            "coco/annotations/person_keypoints_valminusminival2014.json",
        ),
        "keypoints_coco_2017_train": ("coco/train2017", "coco/annotations/person_keypoints_train2017.json"),
        "keypoints_coco_2017_val": ("coco/val2017", "coco/annotations/person_keypoints_val2017.json"),
        "keypoints_coco_2017_val_100": ("coco/val2017", "coco/annotations/person_keypoints_val2017_100.json"),
    },
}

# (panoptic png dir, panoptic json, semantic stuff dir made by detectron2's prepare_panoptic_fpn.py)
_PREDEFINED_SPLITS_COCO_PANOPTIC = {
    "coco_2017_train_panoptic": (
        "coco/panoptic_train2017",
        "coco/annotations/panoptic_train2017.json",
        "coco/panoptic_stuff_train2017",
    ),
    "coco_2017_val_panoptic": (
        "coco/panoptic_val2017",
        "coco/annotations/panoptic_val2017.json",
        "coco/panoptic_stuff_val2017",
    ),
    "coco_2017_val_100_panoptic": (
        "coco/panoptic_val2017_100",
        "coco/annotations/panoptic_val2017_100.json",
        "coco/panoptic_stuff_val2017_100",
    ),
}

# metadata fields naming files a dataset needs before it can be loaded
_REQUIRED_FILE_FIELDS = ("json_file", "image_root", "sem_seg_root")


def _require_files_then(name: str, load: Callable[[], list[dict]], hint: str) -> Callable[[], list[dict]]:
    """Wrap a loader so that a missing file names itself and says where builtins are looked up."""

    def checked_load() -> list[dict]:
        meta = MetadataCatalog.get(name)
        for field in _REQUIRED_FILE_FIELDS:
            path = meta.get(field)
            if path is not None:
                require_path(path, f"dataset {name!r}", field, hint)
        return load()

    return checked_load


def _add_missing_file_hint(names: list[str], hint: str) -> None:
    for name in names:
        load = DatasetCatalog.pop(name)
        DatasetCatalog.register(name, _require_files_then(name, load, hint))


def _coco_hint(root: str) -> str:
    env = os.getenv("DETECTRON2_DATASETS")
    now = f"now {env!r}" if env is not None else f"unset, so {root!r} relative to the working directory"
    return (
        f"Builtin COCO datasets are read from $DETECTRON2_DATASETS ({now}) in detectron2's layout: "
        "coco/annotations/instances_val2017.json, coco/val2017/*.jpg, ... "
        "Set DETECTRON2_DATASETS to the directory that contains coco/."
    )


def register_all_coco(root: str) -> None:
    """Register upstream's COCO instance, keypoint and separated-panoptic names under ``root``."""
    names = []
    for family, splits in _PREDEFINED_SPLITS_COCO.items():
        for key, (image_root, json_file) in splits.items():
            register_coco_instances(
                key,
                get_builtin_metadata(family),
                os.path.join(root, json_file) if "://" not in json_file else json_file,
                os.path.join(root, image_root),
            )
            names.append(key)
    for prefix, (panoptic_root, panoptic_json, semantic_root) in _PREDEFINED_SPLITS_COCO_PANOPTIC.items():
        instances_meta = MetadataCatalog.get(prefix[: -len("_panoptic")])
        register_coco_panoptic_separated(
            prefix,
            get_builtin_metadata("coco_panoptic_separated"),
            instances_meta.image_root,
            os.path.join(root, panoptic_root),
            os.path.join(root, panoptic_json),
            os.path.join(root, semantic_root),
            instances_meta.json_file,
        )
        names += [prefix + "_separated", prefix + "_stuffonly"]
    _add_missing_file_hint(names, _coco_hint(root))


def _shapes_root() -> str:
    """$DETECTRON2_DATASETS/shapes when it exists, else the repository's datasets/shapes."""
    env = os.getenv("DETECTRON2_DATASETS")
    if env and os.path.isdir(os.path.join(os.path.expanduser(env), "shapes")):
        return os.path.join(os.path.expanduser(env), "shapes")
    return os.path.join(bundled_datasets_dir(), "shapes")


def register_shapes(root: str) -> None:
    """The bundled synthetic set: 200 images, thing classes circle, square, triangle."""
    register_coco_instances(
        "shapes_val", get_builtin_metadata("shapes"), os.path.join(root, "val.json"), os.path.join(root, "val")
    )
    hint = (
        "The shapes set ships with the repository in datasets/shapes/ (val.json, val/); "
        "it is also looked up in $DETECTRON2_DATASETS/shapes/."
    )
    _add_missing_file_hint(["shapes_val"], hint)


register_all_coco(datasets_root())
register_shapes(_shapes_root())
