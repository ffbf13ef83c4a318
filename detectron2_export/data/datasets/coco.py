"""COCO-format json -> detectron2 dataset dicts, and registration of COCO-format datasets."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
from typing import Any

import pycocotools.mask as mask_util

from detectron2_export.errors import DatasetError
from detectron2_export.structures import BoxMode

from ..catalog import DatasetCatalog, MetadataCatalog
from .paths import require_path

__all__ = ["load_coco_json", "load_sem_seg", "register_coco_instances"]

logger = logging.getLogger(__name__)


def _load_coco_api(json_file: str | os.PathLike, where: str):
    """pycocotools' COCO object, without its prints; a missing file raises MissingDatasetFileError."""
    from pycocotools.coco import COCO

    require_path(json_file, where, "json_file")
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        coco_api = COCO(os.fspath(json_file))
    if time.perf_counter() - start > 1:
        logger.info("Loading %s takes %.2f seconds.", json_file, time.perf_counter() - start)
    return coco_api


def _set_category_metadata(coco_api: Any, dataset_name: str) -> dict[int, int]:
    """thing_classes ordered by category id, and the dataset id -> contiguous id map."""
    meta = MetadataCatalog.get(dataset_name)
    cat_ids = sorted(coco_api.getCatIds())
    cats = sorted(coco_api.loadCats(cat_ids), key=lambda c: c["id"])
    meta.thing_classes = [c["name"] for c in cats]
    if not (min(cat_ids) == 1 and max(cat_ids) == len(cat_ids)) and "coco" not in dataset_name:
        logger.warning("Category ids in annotations are not in [1, #categories]! We'll apply a mapping for you.")
    id_map = {v: i for i, v in enumerate(cat_ids)}
    meta.thing_dataset_id_to_contiguous_id = id_map
    return id_map


def _convert_annotation(anno: dict, ann_keys: list[str], id_map: dict[int, int] | None, where: str) -> dict | None:
    """One COCO annotation -> one detectron2 instance dict (None: no valid polygon, skip it)."""
    if anno.get("ignore", 0) != 0:
        raise DatasetError(f"{where}: annotation {anno.get('id')} has ignore={anno['ignore']}, expected 0 "
                           '("ignore" in COCO json files is not supported)')
    obj = {key: anno[key] for key in ann_keys if key in anno}
    if "bbox" in obj and len(obj["bbox"]) == 0:
        raise DatasetError(f"{where}: annotation {anno.get('id')} of image {anno['image_id']} has bbox=[], "
                           "expected [x, y, w, h]; this json is not valid COCO")

    segm = anno.get("segmentation", None)
    if segm:  # polygons list[list[float]] or an RLE dict
        if isinstance(segm, dict):
            if isinstance(segm["counts"], list):  # uncompressed RLE -> compressed
                segm = mask_util.frPyObjects(segm, *segm["size"])
        else:
            segm = [poly for poly in segm if len(poly) % 2 == 0 and len(poly) >= 6]
            if not segm:
                return None
        obj["segmentation"] = segm

    keypoints = anno.get("keypoints", None)
    if keypoints:
        # COCO keypoints are integer pixel indices; +0.5 makes them continuous coordinates
        obj["keypoints"] = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(keypoints)]

    obj["bbox_mode"] = BoxMode.XYWH_ABS
    if id_map:
        category_id = obj["category_id"]
        if category_id not in id_map:
            raise DatasetError(f"{where}: annotation {anno.get('id')} has category_id={category_id}, "
                               f"expected one of the json's 'categories' ids {sorted(id_map)}")
        obj["category_id"] = id_map[category_id]
    return obj


def load_coco_json(
    json_file: str | os.PathLike,
    image_root: str | os.PathLike,
    dataset_name: str | None = None,
    extra_annotation_keys: list[str] | None = None,
) -> list[dict]:
    """Load a COCO instances json into detectron2's dataset format (one dict per image, sorted by id).

    With ``dataset_name``, also sets its metadata ``thing_classes`` and
    ``thing_dataset_id_to_contiguous_id`` and maps category ids to contiguous ids 0..K-1.
    Boxes stay XYWH_ABS; keypoint x, y get +0.5; polygons with < 3 points are dropped.
    """
    where = f"load_coco_json({os.fspath(json_file)!r})"
    coco_api = _load_coco_api(json_file, where)
    id_map = _set_category_metadata(coco_api, dataset_name) if dataset_name is not None else None

    img_ids = sorted(coco_api.imgs.keys())
    imgs = coco_api.loadImgs(img_ids)
    anns = [coco_api.imgToAnns[img_id] for img_id in img_ids]
    num_valid = sum(len(x) for x in anns)
    if num_valid < len(coco_api.anns):
        logger.warning("%s contains %d annotations, but only %d of them match to images in the file.",
                       json_file, len(coco_api.anns), num_valid)
    if "minival" not in os.fspath(json_file):  # COCO2014 minival files have this known bug
        ann_ids = [ann["id"] for per_image in anns for ann in per_image]
        if len(set(ann_ids)) != len(ann_ids):
            raise DatasetError(f"{where}: annotation ids are not unique")
    logger.info("Loaded %d images in COCO format from %s", len(imgs), json_file)

    ann_keys = ["iscrowd", "bbox", "keypoints", "category_id"] + (extra_annotation_keys or [])
    num_skipped = 0
    dataset_dicts = []
    for img_dict, anno_dict_list in zip(imgs, anns):
        record = {
            "file_name": os.path.join(image_root, img_dict["file_name"]),
            "height": img_dict["height"],
            "width": img_dict["width"],
            "image_id": img_dict["id"],
        }
        objs = []
        for anno in anno_dict_list:
            obj = _convert_annotation(anno, ann_keys, id_map, where)
            if obj is None:
                num_skipped += 1
            else:
                objs.append(obj)
        record["annotations"] = objs
        dataset_dicts.append(record)
    if num_skipped:
        logger.warning("Filtered out %d instances without valid segmentation. "
                       "There might be issues in your dataset generation process.", num_skipped)
    return dataset_dicts


def load_sem_seg(gt_root: str, image_root: str, gt_ext: str = "png", image_ext: str = "jpg") -> list[dict]:
    """Pair images with label maps of the same relative name: ``{"file_name", "sem_seg_file_name"}``.

    When the two directories hold different sets, the common names are used (with a warning).
    """
    where = f"load_sem_seg({gt_root!r}, {image_root!r})"
    require_path(gt_root, where, "gt_root")
    require_path(image_root, where, "image_root")

    def files_by_stem(root: str, ext: str) -> dict[str, str]:
        found = {}
        for directory, _, names in os.walk(root):
            for f in names:
                if f.endswith(ext):
                    path = os.path.join(directory, f)
                    found[os.path.normpath(os.path.relpath(path, root))[: -len(ext)]] = path
        return found

    inputs = files_by_stem(image_root, image_ext)
    gts = files_by_stem(gt_root, gt_ext)
    if not gts:
        raise DatasetError(f"{where}: no *{gt_ext} annotations found in gt_root")
    stems = sorted(inputs.keys() & gts.keys())
    if len(stems) != len(inputs) or len(stems) != len(gts):
        logger.warning("Directory %s and %s have %d and %d files, respectively; using the %d they share.",
                       image_root, gt_root, len(inputs), len(gts), len(stems))
    logger.info("Loaded %d images with semantic segmentation from %s", len(stems), image_root)
    return [{"file_name": inputs[s], "sem_seg_file_name": gts[s]} for s in stems]


def register_coco_instances(
    name: str, metadata: dict, json_file: str | os.PathLike, image_root: str | os.PathLike
) -> None:
    """Register a COCO instances json (detection, instance segmentation, keypoints) under ``name``.

    The json is only read when the dataset is loaded; ``evaluator_type`` is set to "coco" and
    ``json_file`` is remembered for COCOEvaluator.
    """
    if not isinstance(name, str):
        raise DatasetError(f"register_coco_instances: name={name!r}, expected a str")
    for field, value in (("json_file", json_file), ("image_root", image_root)):
        if not isinstance(value, (str, os.PathLike)):
            raise DatasetError(f"register_coco_instances({name!r}): {field}={value!r}, expected a path")
    DatasetCatalog.register(name, lambda: load_coco_json(json_file, image_root, name))
    MetadataCatalog.get(name).set(json_file=json_file, image_root=image_root, evaluator_type="coco", **metadata)
