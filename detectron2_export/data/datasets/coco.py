"""COCO-format json <-> detectron2 dataset dicts, and registration of COCO-format datasets."""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import logging
import os
import time
from typing import Any, Callable

import numpy as np
import pycocotools.mask as mask_util
import torch

from detectron2_export.errors import DatasetError
from detectron2_export.structures import BoxMode
from detectron2_export.utils.file_io import atomic_write

from ..catalog import DatasetCatalog, MetadataCatalog
from .paths import require_path

__all__ = [
    "load_coco_json",
    "load_sem_seg",
    "convert_to_coco_dict",
    "convert_to_coco_json",
    "register_coco_instances",
]

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


def _polygons_area(polygons: list, where: str) -> float:
    """Sum of the shoelace areas of one instance's polygons, as ``PolygonMasks.area``."""
    area = 0.0
    for polygon in polygons:
        coords = np.asarray(polygon, dtype=np.float64).reshape(-1)
        if coords.size % 2 != 0 or coords.size < 6:
            raise DatasetError(f"{where}: polygon with {coords.size} coordinates, expected an even number >= 6")
        x, y = coords[0::2], coords[1::2]
        area += 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    return area


def _coco_segmentation(segm: Any, where: str) -> tuple[list | dict, float]:
    """A detectron2 segmentation (polygons or RLE) -> its json-serializable COCO form and its area."""
    if isinstance(segm, list):
        polygons = [[float(v) for v in np.asarray(poly).reshape(-1)] for poly in segm]
        return polygons, _polygons_area(polygons, where)
    if isinstance(segm, dict):
        if "counts" not in segm or "size" not in segm:
            raise DatasetError(f"{where}: RLE segmentation with keys {sorted(segm)}, expected 'counts' and 'size'")
        rle = dict(segm)
        if isinstance(rle["counts"], list):  # uncompressed RLE: pycocotools only measures compressed ones
            area = mask_util.area(mask_util.frPyObjects(rle, *rle["size"]))
        else:
            area = mask_util.area(rle)
            if isinstance(rle["counts"], bytes):
                rle["counts"] = rle["counts"].decode("ascii")  # json cannot hold bytes
        return rle, float(area)
    raise DatasetError(
        f"{where}: segmentation of type {type(segm).__name__}, expected polygons (list[list[float]]) or an RLE dict"
    )


def _coco_keypoints(keypoints: Any) -> tuple[list, int]:
    """Continuous keypoint coordinates -> COCO pixel indices (x, y - 0.5, the inverse of loading)."""
    values = np.asarray(keypoints, dtype=np.float64).reshape(-1).tolist()
    coco = [v - 0.5 if i % 3 != 2 else int(v) for i, v in enumerate(values)]
    return coco, sum(1 for v in coco[2::3] if v > 0)


def _coco_annotation(annotation: dict, reverse_id: Callable[[int], int], where: str) -> dict:
    """One detectron2 instance dict -> a COCO annotation without its "id" and "image_id"."""
    for key in ("bbox", "bbox_mode", "category_id"):
        if key not in annotation:
            raise DatasetError(f"{where}: annotation has no {key!r}, expected keys bbox, bbox_mode, category_id")
    bbox = annotation["bbox"]
    if isinstance(bbox, (np.ndarray, torch.Tensor)):
        if bbox.ndim != 1:
            raise DatasetError(f"{where}: bbox of shape {tuple(bbox.shape)}, expected a 1-dimensional box")
        bbox = bbox.tolist()
    bbox = list(bbox)
    if len(bbox) not in (4, 5):
        raise DatasetError(f"{where}: bbox={bbox}, expected 4 numbers (or 5 for a rotated box)")
    to_mode = BoxMode.XYWH_ABS if len(bbox) == 4 else BoxMode.XYWHA_ABS
    bbox = BoxMode.convert(bbox, BoxMode(annotation["bbox_mode"]), to_mode)

    if "segmentation" in annotation:
        segmentation, area = _coco_segmentation(annotation["segmentation"], where)
    else:  # w * h, for axis-aligned and rotated boxes alike
        area = float(bbox[2]) * float(bbox[3])

    category_id = annotation["category_id"]
    try:
        dataset_category_id = int(reverse_id(category_id))
    except KeyError:
        raise DatasetError(
            f"{where}: category_id={category_id}, expected a contiguous id of thing_dataset_id_to_contiguous_id"
        ) from None
    coco = {
        "bbox": [round(float(v), 3) for v in bbox],
        "area": float(area),
        "iscrowd": int(annotation.get("iscrowd", 0)),
        "category_id": dataset_category_id,
    }
    if "keypoints" in annotation:
        coco["keypoints"], num_keypoints = _coco_keypoints(annotation["keypoints"])
        coco["num_keypoints"] = int(annotation.get("num_keypoints", num_keypoints))
    if "segmentation" in annotation:
        coco["segmentation"] = segmentation
    return coco


def convert_to_coco_dict(dataset_name: str) -> dict:
    """A registered dataset in detectron2's format -> a COCO instances json dict.

    Needs ``thing_classes`` in the dataset's metadata; contiguous category ids are mapped back with
    ``thing_dataset_id_to_contiguous_id`` when the metadata has it. Boxes become XYWH_ABS (rotated
    ones stay XYWHA_ABS), areas come from the segmentation when there is one, else from the box,
    keypoints get -0.5 on x, y, and annotation ids count from 1. The dataset dicts are not modified.
    """
    dataset_dicts = DatasetCatalog.get(dataset_name)
    metadata = MetadataCatalog.get(dataset_name)
    where = f"convert_to_coco_dict({dataset_name!r})"
    thing_classes = metadata.get("thing_classes")
    if thing_classes is None:
        raise DatasetError(f"{where}: metadata has no thing_classes, expected the list of class names")
    id_map = metadata.get("thing_dataset_id_to_contiguous_id")
    if id_map is not None:
        reverse_mapping = {contiguous: dataset_id for dataset_id, contiguous in id_map.items()}
        reverse_id: Callable[[int], int] = reverse_mapping.__getitem__
    else:
        reverse_id = int
    if id_map is not None and sorted(id_map.values()) != list(range(len(thing_classes))):
        raise DatasetError(
            f"{where}: thing_dataset_id_to_contiguous_id values={sorted(id_map.values())}, "
            f"expected 0..{len(thing_classes) - 1} (one per thing_classes entry)"
        )
    categories = [{"id": reverse_id(i), "name": name} for i, name in enumerate(thing_classes)]

    logger.info("Converting dataset dicts into COCO format")
    coco_images: list[dict] = []
    coco_annotations: list[dict] = []
    for index, image_dict in enumerate(dataset_dicts):
        image_where = f"{where}, image {index}"
        missing = [k for k in ("width", "height", "file_name") if k not in image_dict]
        if missing:
            raise DatasetError(f"{image_where}: no {missing}, expected width, height and file_name")
        coco_image = {
            "id": image_dict.get("image_id", index),
            "width": int(image_dict["width"]),
            "height": int(image_dict["height"]),
            "file_name": str(image_dict["file_name"]),
        }
        coco_images.append(coco_image)
        for annotation in image_dict.get("annotations", []):
            coco = _coco_annotation(annotation, reverse_id, f"{image_where} (id {coco_image['id']})")
            coco_annotations.append({"id": len(coco_annotations) + 1, "image_id": coco_image["id"], **coco})
    logger.info("Conversion finished, #images: %d, #annotations: %d", len(coco_images), len(coco_annotations))

    coco_dict = {
        "info": {
            "date_created": str(datetime.datetime.now()),
            "description": "Automatically generated COCO json file for Detectron2.",
        },
        "images": coco_images,
        "categories": categories,
        "licenses": None,
    }
    if coco_annotations:  # without the key, COCOEvaluator treats the set as a test set
        coco_dict["annotations"] = coco_annotations
    return coco_dict


def convert_to_coco_json(dataset_name: str, output_file: str | os.PathLike, allow_cached: bool = True) -> None:
    """Write :func:`convert_to_coco_dict` of a registered dataset to ``output_file``.

    With ``allow_cached``, an existing ``output_file`` is kept as is (delete it when the dataset
    changes). The json is written to a temporary file first and moved into place, so a reader
    never sees half a file.
    """
    output_file = os.fspath(output_file)
    directory = os.path.dirname(output_file)
    if directory:
        os.makedirs(directory, exist_ok=True)
    if allow_cached and os.path.exists(output_file):
        logger.warning("Using previously cached COCO format annotations at '%s'. "
                       "You need to clear the cache file if your dataset has been modified.", output_file)
        return
    logger.info("Converting annotations of dataset '%s' to COCO format ...", dataset_name)
    coco_dict = convert_to_coco_dict(dataset_name)
    logger.info("Caching COCO format annotations at '%s' ...", output_file)
    with atomic_write(output_file, "w") as f:
        json.dump(coco_dict, f)


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
