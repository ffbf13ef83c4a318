import json
import os

import pytest

from detectron2_export.data import DatasetCatalog, MetadataCatalog
from detectron2_export.data.datasets import MissingDatasetFileError, load_coco_json, load_sem_seg
from detectron2_export.data.datasets import builtin
from detectron2_export.data.datasets.builtin_meta import COCO_PERSON_KEYPOINT_NAMES, get_builtin_metadata
from detectron2_export.errors import DatasetError
from detectron2_export.structures import BoxMode

from .helpers import SHAPES_DIR, SHAPES_IMAGES, SHAPES_JSON, load_shapes_json, registered_coco


def test_load_bundled_shapes_val(tmp_path):
    raw = load_shapes_json()
    with registered_coco(raw, str(tmp_path)) as name:
        dicts = load_coco_json(SHAPES_JSON, SHAPES_IMAGES, name)
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["circle", "square", "triangle"]
        assert meta.thing_dataset_id_to_contiguous_id == {1: 0, 2: 1, 3: 2}
    assert len(dicts) == 200
    assert [d["image_id"] for d in dicts] == sorted(im["id"] for im in raw["images"])
    first = dicts[0]
    image = next(im for im in raw["images"] if im["id"] == first["image_id"])
    assert first["file_name"] == os.path.join(SHAPES_IMAGES, image["file_name"])
    assert (first["height"], first["width"]) == (image["height"], image["width"])

    raw_by_image: dict = {}
    for a in raw["annotations"]:
        raw_by_image.setdefault(a["image_id"], []).append(a)
    assert sum(len(d["annotations"]) for d in dicts) == len(raw["annotations"]) == 699
    for d in dicts:
        for obj, ann in zip(d["annotations"], raw_by_image.get(d["image_id"], [])):
            assert obj["category_id"] == ann["category_id"] - 1  # 1, 2, 3 -> 0, 1, 2
            assert obj["bbox"] == ann["bbox"] and obj["bbox_mode"] == BoxMode.XYWH_ABS
            assert obj["segmentation"] == ann["segmentation"] and obj["iscrowd"] == 0
            if "keypoints" in ann:  # triangles: pixel indices -> continuous coordinates (+0.5 on x, y)
                expected = [v + 0.5 if i % 3 != 2 else v for i, v in enumerate(ann["keypoints"])]
                assert obj["keypoints"] == expected
            else:
                assert "keypoints" not in obj


def test_builtin_shapes_val_from_any_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dicts = DatasetCatalog.get("shapes_val")
    assert len(dicts) == 200 and os.path.isfile(dicts[0]["file_name"])
    meta = MetadataCatalog.get("shapes_val")
    assert meta.thing_classes == ["circle", "square", "triangle"]
    assert meta.evaluator_type == "coco"
    assert os.path.samefile(meta.json_file, SHAPES_JSON)


def test_shapes_root_honours_detectron2_datasets(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    assert os.path.samefile(builtin._shapes_root(), SHAPES_DIR)  # no shapes/ there: the bundled copy
    (tmp_path / "shapes").mkdir()
    assert builtin._shapes_root() == os.path.join(str(tmp_path), "shapes")


@pytest.fixture
def empty_catalogs(monkeypatch):
    """Register builtins into empty catalogs for the duration of a test."""
    monkeypatch.setattr(DatasetCatalog, "data", {})
    monkeypatch.setattr(MetadataCatalog, "data", {})


def test_missing_coco_names_the_path_and_the_variable(tmp_path, monkeypatch, empty_catalogs):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    builtin.register_all_coco(str(tmp_path))
    expected = os.path.join(str(tmp_path), "coco", "annotations", "instances_val2017.json")
    with pytest.raises(MissingDatasetFileError) as info:
        DatasetCatalog.get("coco_2017_val")
    message = str(info.value)
    assert message.startswith(f"dataset 'coco_2017_val': json_file={expected!r} does not exist")
    assert "DETECTRON2_DATASETS" in message and repr(str(tmp_path)) in message
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DatasetError)

    with pytest.raises(MissingDatasetFileError, match="person_keypoints_val2017.json"):
        DatasetCatalog.get("keypoints_coco_2017_val")
    with pytest.raises(MissingDatasetFileError, match="instances_val2017.json"):
        DatasetCatalog.get("coco_2017_val_panoptic_separated")


def test_builtin_coco_layout_loads_with_coco_ids(tmp_path, empty_catalogs):
    builtin.register_all_coco(str(tmp_path))
    annotations = tmp_path / "coco" / "annotations"
    annotations.mkdir(parents=True)
    coco_meta = get_builtin_metadata("coco")
    ids, names = coco_meta["thing_dataset_id_to_contiguous_id"], coco_meta["thing_classes"]
    categories = [{"id": i, "name": n} for i, n in zip(ids, names)]
    coco = {
        "images": [{"id": 7, "file_name": "000007.jpg", "height": 10, "width": 20}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 90, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 0},
            {"id": 2, "image_id": 7, "category_id": 13, "bbox": [1, 2, 3, 4], "area": 12, "iscrowd": 1},
        ],
        "categories": categories,
    }
    (annotations / "instances_val2017.json").write_text(json.dumps(coco))
    with pytest.raises(MissingDatasetFileError, match="image_root=.*val2017'? does not exist"):
        DatasetCatalog.get("coco_2017_val")
    (tmp_path / "coco" / "val2017").mkdir()
    (d,) = DatasetCatalog.get("coco_2017_val")
    # toothbrush (id 90) is the 80th class; stop sign (id 13, after the gap at 12) is the 12th
    assert [a["category_id"] for a in d["annotations"]] == [79, 11]
    assert d["file_name"] == os.path.join(str(tmp_path), "coco", "val2017", "000007.jpg")
    meta = MetadataCatalog.get("coco_2017_val")
    assert len(meta.thing_classes) == 80 and meta.thing_classes[0] == "person"
    assert meta.thing_dataset_id_to_contiguous_id[90] == 79


def test_builtin_keypoint_metadata():
    meta = MetadataCatalog.get("keypoints_coco_2017_val")
    assert meta.thing_classes == ["person"]
    assert len(meta.keypoint_names) == 17 and meta.keypoint_names[0] == "nose"
    assert meta.keypoint_names == COCO_PERSON_KEYPOINT_NAMES
    assert ("left_eye", "right_eye") in meta.keypoint_flip_map and len(meta.keypoint_flip_map) == 8
    panoptic = MetadataCatalog.get("coco_2017_val_panoptic_separated")
    assert len(panoptic.stuff_classes) == 54 and panoptic.stuff_classes[0] == "things"
    assert panoptic.stuff_dataset_id_to_contiguous_id[200] == 53
    assert panoptic.evaluator_type == "coco_panoptic_seg"


def test_load_coco_json_errors(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(MissingDatasetFileError, match=f"json_file={str(missing)!r} does not exist"):
        load_coco_json(str(missing), str(tmp_path))
    bad = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 5, "width": 5}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 4, "bbox": [0, 0, 1, 1], "area": 1, "iscrowd": 0}],
        "categories": [{"id": 1, "name": "a"}],
    }
    with registered_coco(bad, str(tmp_path)) as name:
        with pytest.raises(DatasetError, match="category_id=4, expected one of the json's 'categories' ids \\[1\\]"):
            DatasetCatalog.get(name)


def test_polygons_with_fewer_than_3_points_are_dropped(tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg", "height": 5, "width": 5}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0,
             "segmentation": [[0, 0, 1, 0, 1, 1], [0, 0, 1, 1]]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "iscrowd": 0,
             "segmentation": [[0, 0, 1, 1]]},
        ],
        "categories": [{"id": 1, "name": "a"}],
    }
    with registered_coco(coco, str(tmp_path)) as name:
        (d,) = DatasetCatalog.get(name)
    assert [a["segmentation"] for a in d["annotations"]] == [[[0, 0, 1, 0, 1, 1]]]


def test_load_sem_seg_pairs_shapes_stuff_maps():
    dicts = load_sem_seg(os.path.join(SHAPES_DIR, "val_stuff"), SHAPES_IMAGES)
    assert len(dicts) == 200
    assert dicts[0] == {
        "file_name": os.path.join(SHAPES_IMAGES, "00000.jpg"),
        "sem_seg_file_name": os.path.join(SHAPES_DIR, "val_stuff", "00000.png"),
    }
