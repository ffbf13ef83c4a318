import contextlib
import copy
import json
import os
import uuid
from typing import Callable, Iterator

import numpy as np
import pycocotools.mask as mask_util
import pytest

from detectron2_export.data import DatasetCatalog, MetadataCatalog
from detectron2_export.data.datasets.coco import convert_to_coco_dict, convert_to_coco_json
from detectron2_export.errors import DatasetError
from detectron2_export.structures import BoxMode

from .helpers import load_shapes_json


@contextlib.contextmanager
def registered_dataset(load: Callable[[], list], **metadata) -> Iterator[str]:
    """Register ``load`` (and metadata, no json_file) under a fresh name; unregister afterwards."""
    name = f"test_conv_{uuid.uuid4().hex[:8]}"
    DatasetCatalog.register(name, load)
    MetadataCatalog.get(name).set(**metadata)
    try:
        yield name
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def shapes_metadata() -> dict:
    DatasetCatalog.get("shapes_val")  # loading sets the id mapping of the builtin metadata
    meta = MetadataCatalog.get("shapes_val")
    return {
        "thing_classes": meta.thing_classes,
        "thing_dataset_id_to_contiguous_id": meta.thing_dataset_id_to_contiguous_id,
    }


def test_shapes_val_converts_back_to_its_json(tmp_path):
    out = tmp_path / "cache" / "shapes_coco_format.json"
    with registered_dataset(lambda: DatasetCatalog.get("shapes_val"), **shapes_metadata()) as name:
        assert MetadataCatalog.get(name).get("json_file") is None
        convert_to_coco_json(name, out)
    converted = json.loads(out.read_text())
    original = load_shapes_json()
    assert os.listdir(out.parent) == [out.name]  # the temporary file was moved into place

    assert converted["categories"] == [{"id": c["id"], "name": c["name"]} for c in original["categories"]]
    assert converted["info"]["description"] == "Automatically generated COCO json file for Detectron2."
    orig_images = {im["id"]: im for im in original["images"]}
    assert sorted(im["id"] for im in converted["images"]) == sorted(orig_images)
    for im in converted["images"]:
        expected = orig_images[im["id"]]
        assert (im["width"], im["height"]) == (expected["width"], expected["height"])
        assert os.path.basename(im["file_name"]) == expected["file_name"]

    assert [a["id"] for a in converted["annotations"]] == list(range(1, len(original["annotations"]) + 1))
    by_image = lambda anns: {i: [a for a in anns if a["image_id"] == i] for i in orig_images}  # noqa: E731
    orig_by_image, conv_by_image = by_image(original["annotations"]), by_image(converted["annotations"])
    for image_id, expected_anns in orig_by_image.items():
        got_anns = conv_by_image[image_id]
        assert len(got_anns) == len(expected_anns)
        for got, expected in zip(got_anns, expected_anns):  # the loader keeps the json's order
            np.testing.assert_allclose(got["bbox"], expected["bbox"], rtol=0, atol=1e-3)
            assert got["category_id"] == expected["category_id"]
            assert got["area"] == pytest.approx(expected["area"], rel=1e-3)
            assert got["iscrowd"] == expected["iscrowd"]
            assert got["segmentation"] == expected["segmentation"]
            if "keypoints" in expected:  # +0.5 on loading, -0.5 on converting
                np.testing.assert_allclose(got["keypoints"], expected["keypoints"], rtol=0, atol=1e-9)
                assert got["num_keypoints"] == expected["num_keypoints"]
            else:
                assert "keypoints" not in got


def _rle(mask: np.ndarray) -> dict:
    return mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))


def hand_dicts() -> list[dict]:
    block = np.zeros((4, 5), dtype=np.uint8)
    block[1:3, 1:4] = 1  # 6 pixels
    return [
        {
            "image_id": 7,
            "file_name": "a.jpg",
            "height": 40,
            "width": 50,
            "annotations": [
                {  # triangle with legs 4 and 3: area 6; XYXY box -> XYWH
                    "bbox": [1.0, 2.0, 5.0, 5.0],
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 1,
                    "segmentation": [[1.0, 2.0, 5.0, 2.0, 1.0, 5.0]],
                },
                {  # compressed RLE with bytes counts, a crowd region
                    "bbox": [1, 1, 3, 2],
                    "bbox_mode": BoxMode.XYWH_ABS,
                    "category_id": 0,
                    "segmentation": _rle(block),
                    "iscrowd": 1,
                },
                {  # no segmentation: the box area 2.5 * 4
                    "bbox": np.array([1.0, 1.0, 3.5, 5.0]),
                    "bbox_mode": BoxMode.XYXY_ABS,
                    "category_id": 0,
                    "keypoints": [1.5, 2.5, 2, 0.5, 0.5, 0, 3.0, 3.0, 1],
                },
            ],
        },
        {  # no image_id: its index; two polygons: 2x2 square + right triangle with legs 2, 2
            "file_name": "b.jpg",
            "height": 10,
            "width": 10,
            "annotations": [
                {
                    "bbox": [5.0, 5.0, 4.0, 2.0, 30.0],  # rotated boxes stay XYWHA
                    "bbox_mode": BoxMode.XYWHA_ABS,
                    "category_id": 1,
                    "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2], [5, 5, 7, 5, 5, 7]],
                },
                {  # uncompressed RLE: 2 zeros, 3 ones, 15 zeros
                    "bbox": [0, 0, 1, 1],
                    "bbox_mode": BoxMode.XYWH_ABS,
                    "category_id": 1,
                    "segmentation": {"size": [4, 5], "counts": [2, 3, 15]},
                },
                {"bbox": [0, 0, 2, 2, 0], "bbox_mode": BoxMode.XYWHA_ABS, "category_id": 0},  # area 4
            ],
        },
    ]


def test_hand_computed_conversion():
    dicts = hand_dicts()
    untouched = copy.deepcopy(dicts)
    meta = {"thing_classes": ["cat", "dog"], "thing_dataset_id_to_contiguous_id": {10: 0, 20: 1}}
    with registered_dataset(lambda: dicts, **meta) as name:
        coco = convert_to_coco_dict(name)
    json.dumps(coco)  # serializable: no numpy values, no bytes

    assert coco["categories"] == [{"id": 10, "name": "cat"}, {"id": 20, "name": "dog"}]
    assert coco["images"] == [
        {"id": 7, "width": 50, "height": 40, "file_name": "a.jpg"},
        {"id": 1, "width": 10, "height": 10, "file_name": "b.jpg"},
    ]
    anns = coco["annotations"]
    assert [(a["id"], a["image_id"]) for a in anns] == [(1, 7), (2, 7), (3, 7), (4, 1), (5, 1), (6, 1)]
    assert [a["category_id"] for a in anns] == [20, 10, 10, 20, 20, 10]
    assert [a["iscrowd"] for a in anns] == [0, 1, 0, 0, 0, 0]
    assert [a["bbox"] for a in anns] == [
        [1.0, 2.0, 4.0, 3.0],
        [1, 1, 3, 2],
        [1.0, 1.0, 2.5, 4.0],
        [5.0, 5.0, 4.0, 2.0, 30.0],
        [0, 0, 1, 1],
        [0, 0, 2, 2, 0],
    ]
    assert [a["area"] for a in anns] == pytest.approx([6.0, 6.0, 10.0, 4.0 + 2.0, 3.0, 4.0], abs=1e-12)

    assert anns[0]["segmentation"] == [[1.0, 2.0, 5.0, 2.0, 1.0, 5.0]]
    rle = anns[1]["segmentation"]
    assert isinstance(rle["counts"], str)
    original_rle = untouched[0]["annotations"][1]["segmentation"]
    np.testing.assert_array_equal(mask_util.decode(rle), mask_util.decode(original_rle))
    assert anns[4]["segmentation"] == {"size": [4, 5], "counts": [2, 3, 15]}
    assert "segmentation" not in anns[2] and "keypoints" not in anns[0]
    assert anns[2]["keypoints"] == [1.0, 2.0, 2, 0.0, 0.0, 0, 2.5, 2.5, 1]  # x, y - 0.5
    assert anns[2]["num_keypoints"] == 2
    assert repr(dicts) == repr(untouched)  # not modified (repr: the dicts hold a numpy box)


def test_without_id_mapping_ids_are_the_contiguous_ones():
    dicts = [{"image_id": 3, "file_name": "x.jpg", "height": 5, "width": 5,
              "annotations": [{"bbox": [0, 0, 1, 1], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 1}]}]
    with registered_dataset(lambda: dicts, thing_classes=["a", "b"]) as name:
        coco = convert_to_coco_dict(name)
    assert coco["categories"] == [{"id": 0, "name": "a"}, {"id": 1, "name": "b"}]
    assert coco["annotations"][0]["category_id"] == 1


def test_no_annotations_means_no_annotations_key():
    dicts = [{"image_id": 1, "file_name": "x.jpg", "height": 5, "width": 5}]
    with registered_dataset(lambda: dicts, thing_classes=["a"]) as name:
        coco = convert_to_coco_dict(name)
    assert "annotations" not in coco and len(coco["images"]) == 1


def test_cache_is_reused_unless_disallowed(tmp_path):
    out = tmp_path / "c.json"
    out.write_text('{"stale": true}')
    dicts = [{"image_id": 1, "file_name": "x.jpg", "height": 5, "width": 5, "annotations": []}]
    with registered_dataset(lambda: dicts, thing_classes=["a"]) as name:
        convert_to_coco_json(name, str(out))
        assert json.loads(out.read_text()) == {"stale": True}
        convert_to_coco_json(name, str(out), allow_cached=False)
    assert json.loads(out.read_text())["images"] == [{"id": 1, "width": 5, "height": 5, "file_name": "x.jpg"}]
    assert os.listdir(tmp_path) == ["c.json"]


def _one_annotation(**fields) -> list[dict]:
    annotation = {"bbox": [0, 0, 1, 1], "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, **fields}
    return [{"image_id": 1, "file_name": "x.jpg", "height": 5, "width": 5, "annotations": [annotation]}]


@pytest.mark.parametrize(
    "dicts, metadata, message",
    [
        (_one_annotation(), {}, "metadata has no thing_classes"),
        (_one_annotation(category_id=5), {"thing_classes": ["a"], "thing_dataset_id_to_contiguous_id": {3: 0}},
         "category_id=5"),
        (_one_annotation(segmentation=[[0, 0, 1, 1]]), {"thing_classes": ["a"]}, "polygon with 4 coordinates"),
        (_one_annotation(segmentation=np.ones((5, 5))), {"thing_classes": ["a"]}, "segmentation of type ndarray"),
        (_one_annotation(bbox=[0, 0, 1]), {"thing_classes": ["a"]}, r"bbox=\[0, 0, 1\]"),
        ([{"image_id": 1, "file_name": "x.jpg", "annotations": []}], {"thing_classes": ["a"]}, "image 0"),
    ],
)
def test_malformed_datasets_are_clear_errors(dicts, metadata, message):
    with registered_dataset(lambda: dicts, **metadata) as name:
        with pytest.raises(DatasetError, match=message):
            convert_to_coco_dict(name)
