"""Shared test fixtures for data/evaluation tests: the bundled shapes json and temporary datasets."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from typing import Iterator

from detectron2_export.data import DatasetCatalog, MetadataCatalog
from detectron2_export.data.datasets import register_coco_instances

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_DIR = os.path.join(REPO_ROOT, "datasets", "shapes")
SHAPES_JSON = os.path.join(SHAPES_DIR, "val.json")
SHAPES_IMAGES = os.path.join(SHAPES_DIR, "val")


def load_shapes_json() -> dict:
    with open(SHAPES_JSON) as f:
        return json.load(f)


@contextlib.contextmanager
def registered_coco(
    coco: dict, directory: str, image_root: str = SHAPES_IMAGES, metadata: dict | None = None
) -> Iterator[str]:
    """Write ``coco`` to a json in ``directory``, register it under a fresh name, unregister afterwards."""
    name = f"test_{uuid.uuid4().hex[:8]}"
    json_file = os.path.join(directory, f"{name}.json")
    with open(json_file, "w") as f:
        json.dump(coco, f)
    register_coco_instances(name, metadata or {}, json_file, image_root)
    try:
        yield name
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def shapes_subset(num_images: int, keep_category_ids: tuple[int, ...] = (1, 2, 3)) -> dict:
    """The first ``num_images`` images of the shapes val json with their annotations of some categories."""
    coco = load_shapes_json()
    images = sorted(coco["images"], key=lambda im: im["id"])[:num_images]
    ids = {im["id"] for im in images}
    annotations = [
        a for a in coco["annotations"] if a["image_id"] in ids and a["category_id"] in keep_category_ids
    ]
    return {"images": images, "annotations": annotations, "categories": coco["categories"]}
