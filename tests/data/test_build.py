import numpy as np
import pytest
import torch
from PIL import Image
from yacs.config import CfgNode

from detectron2_export.data import (
    DatasetMapper,
    build_detection_test_loader,
    get_detection_dataset_dicts,
)
from detectron2_export.errors import DatasetError

from .helpers import SHAPES_IMAGES, load_shapes_json


def make_cfg(min_size=288, max_size=384, fmt="BGR"):
    return CfgNode(
        {
            "INPUT": {"MIN_SIZE_TEST": min_size, "MAX_SIZE_TEST": max_size, "FORMAT": fmt},
            "DATALOADER": {"NUM_WORKERS": 0},
        }
    )


def test_test_loader_from_cfg_on_shapes_val():
    loader = build_detection_test_loader(make_cfg(), "shapes_val")
    assert len(loader) == 200
    batch = next(iter(loader))
    assert isinstance(batch, list) and len(batch) == 1
    d = batch[0]
    assert d["image_id"] == 1 and (d["height"], d["width"]) == (374, 281)
    assert "annotations" not in d
    image = d["image"]
    assert image.dtype == torch.float32 and image.shape == (3, 383, 288)  # 374x281 -> 383.32x288
    rgb = Image.open(f"{SHAPES_IMAGES}/00000.jpg").convert("RGB").resize((288, 383), Image.BILINEAR)
    expected = np.asarray(rgb)[:, :, ::-1].transpose(2, 0, 1).astype(np.float32)
    np.testing.assert_array_equal(image.numpy(), expected)


def test_mapper_rgb_and_explicit_loader_arguments():
    dicts = get_detection_dataset_dicts("shapes_val", filter_empty=False)[:3]
    mapper = DatasetMapper(make_cfg(fmt="RGB", min_size=100, max_size=1000), False)
    loader = build_detection_test_loader(dicts, mapper=mapper, batch_size=2)
    batches = list(loader)
    assert [len(b) for b in batches] == [2, 1]
    d = batches[0][0]
    assert min(d["image"].shape[1:]) == 100
    ref = Image.open(d["file_name"]).convert("RGB")
    h, w = d["image"].shape[1:]
    np.testing.assert_array_equal(d["image"].numpy(), np.asarray(ref.resize((w, h), Image.BILINEAR)).transpose(2, 0, 1))
    assert "annotations" in dicts[0]  # the mapper works on a copy


def test_mapper_is_inference_only():
    with pytest.raises(NotImplementedError, match="is_train=True, expected False"):
        DatasetMapper(make_cfg(), True)


def test_get_detection_dataset_dicts_errors():
    with pytest.raises(KeyError, match="'nope' is not registered"):
        get_detection_dataset_dicts(["nope"])
    with pytest.raises(DatasetError, match="names=\\[\\]"):
        get_detection_dataset_dicts([])



def test_min_keypoints_filter_counts_visible_keypoints():
    raw = load_shapes_json()
    with_visible = {
        a["image_id"] for a in raw["annotations"] if "keypoints" in a and any(v > 0 for v in a["keypoints"][2::3])
    }
    dicts = get_detection_dataset_dicts("shapes_val", min_keypoints=1)
    assert {d["image_id"] for d in dicts} == with_visible  # only images with a triangle remain
    assert len(get_detection_dataset_dicts("shapes_val", min_keypoints=4)) < len(dicts)  # one triangle has 3
