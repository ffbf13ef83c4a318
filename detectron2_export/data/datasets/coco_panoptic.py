"""COCO panoptic in detectron2's "separated" form (instances json + semantic stuff maps), for PanopticFPN."""

from __future__ import annotations

import copy

from detectron2_export.errors import DatasetError

from ..catalog import DatasetCatalog, MetadataCatalog
from .coco import load_coco_json, load_sem_seg

__all__ = ["register_coco_panoptic_separated", "merge_to_panoptic"]


def merge_to_panoptic(detection_dicts: list[dict], sem_seg_dicts: list[dict]) -> list[dict]:
    """Add each image's ``sem_seg_file_name`` to its instance dict (matched by file_name)."""
    sem_seg_by_file = {x["file_name"]: x for x in sem_seg_dicts}
    if not sem_seg_by_file:
        raise DatasetError("merge_to_panoptic: sem_seg_dicts=[], expected at least one label map")
    merged = []
    for det in detection_dicts:
        if det["file_name"] not in sem_seg_by_file:
            raise DatasetError(f"merge_to_panoptic: file_name={det['file_name']!r} has no semantic label map")
        d = copy.copy(det)
        d.update(sem_seg_by_file[det["file_name"]])
        merged.append(d)
    return merged


def register_coco_panoptic_separated(
    name: str,
    metadata: dict,
    image_root: str,
    panoptic_root: str,
    panoptic_json: str,
    sem_seg_root: str,
    instances_json: str,
) -> None:
    """Register ``name + "_separated"`` (instances + stuff maps) and ``name + "_stuffonly"``."""
    panoptic_name = name + "_separated"
    DatasetCatalog.register(
        panoptic_name,
        lambda: merge_to_panoptic(
            load_coco_json(instances_json, image_root, panoptic_name), load_sem_seg(sem_seg_root, image_root)
        ),
    )
    MetadataCatalog.get(panoptic_name).set(
        panoptic_root=panoptic_root,
        image_root=image_root,
        panoptic_json=panoptic_json,
        sem_seg_root=sem_seg_root,
        json_file=instances_json,
        evaluator_type="coco_panoptic_seg",
        ignore_label=255,
        **metadata,
    )

    semantic_name = name + "_stuffonly"
    DatasetCatalog.register(semantic_name, lambda: load_sem_seg(sem_seg_root, image_root))
    MetadataCatalog.get(semantic_name).set(
        sem_seg_root=sem_seg_root, image_root=image_root, evaluator_type="sem_seg", ignore_label=255, **metadata
    )
