"""detectron2.data.detection_utils' public names (v0.6) import from detection_utils: the inference
ones work (checked by hand cases), the training-only ones raise TrainingOnlyError when called."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from detectron2_export.config import get_cfg
from detectron2_export.data import MetadataCatalog
from detectron2_export.data import detection_utils as utils
from detectron2_export.data import transforms as T
from detectron2_export.errors import DatasetError
from detectron2_export.utils.training_only import TrainingOnlyError

UPSTREAM_NAMES = [
    "SizeMismatchError", "annotations_to_instances", "annotations_to_instances_rotated", "build_augmentation",
    "build_transform_gen", "check_image_size", "check_metadata_consistency", "convert_PIL_to_numpy",
    "convert_image_to_rgb", "create_keypoint_hflip_indices", "filter_empty_instances",
    "gen_crop_transform_with_instance", "read_image", "transform_instance_annotations",
    "transform_keypoint_annotations", "transform_proposals",
]
TRAINING_ONLY = [
    "annotations_to_instances", "annotations_to_instances_rotated", "filter_empty_instances",
    "gen_crop_transform_with_instance", "transform_instance_annotations", "transform_keypoint_annotations",
    "transform_proposals",
]
PIXELS = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [40, 50, 60], [70, 80, 90]]], np.uint8)
KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear"]
FLIP_MAP = [("left_eye", "right_eye"), ("left_ear", "right_ear")]


def test_upstream_names_import():
    assert [n for n in UPSTREAM_NAMES if not hasattr(utils, n)] == []
    assert set(UPSTREAM_NAMES) <= set(utils.__all__)


@pytest.mark.parametrize("name", TRAINING_ONLY)
def test_training_only_names_raise(name):
    with pytest.raises(TrainingOnlyError, match=rf"^detectron2_export\.data\.detection_utils\.{name} is training-only"):
        getattr(utils, name)([{"bbox": [0, 0, 1, 1]}], (4, 4))


def test_convert_image_to_rgb_inverts_each_input_format():
    rgb = Image.fromarray(PIXELS, "RGB")
    bgr = utils.convert_PIL_to_numpy(rgb, "BGR")
    np.testing.assert_array_equal(utils.convert_image_to_rgb(bgr, "BGR"), PIXELS)
    np.testing.assert_array_equal(utils.convert_image_to_rgb(torch.from_numpy(bgr.copy()), "BGR"), PIXELS)
    np.testing.assert_array_equal(utils.convert_image_to_rgb(PIXELS, "RGB"), PIXELS)
    # the two BT.601 matrices are inverses to about 1e-5: back to within a thousandth of a level
    yuv = utils.convert_PIL_to_numpy(rgb, "YUV-BT.601")
    np.testing.assert_allclose(utils.convert_image_to_rgb(yuv, "YUV-BT.601"), PIXELS, atol=1e-2)
    # pure red (Y, U, V) = (0.299, -0.14713, 0.615): R = 0.299 + 1.13983 * 0.615 = 1.00000, G = B = 0
    np.testing.assert_allclose(utils.convert_image_to_rgb(yuv[:1, :1], "YUV-BT.601")[0, 0], [255, 0, 0], atol=0.02)
    gray = utils.convert_PIL_to_numpy(rgb, "L")  # HxWx1
    out = utils.convert_image_to_rgb(gray, "L")
    assert out.shape == (2, 3, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.repeat(gray, 3, axis=2))


@pytest.fixture
def keypoint_datasets():
    names = ["_kp_test_a", "_kp_test_b", "_kp_test_c"]
    MetadataCatalog.get(names[0]).set(keypoint_names=KEYPOINTS, keypoint_flip_map=FLIP_MAP)
    MetadataCatalog.get(names[1]).set(keypoint_names=KEYPOINTS, keypoint_flip_map=FLIP_MAP)
    MetadataCatalog.get(names[2]).set(keypoint_names=KEYPOINTS[::-1], keypoint_flip_map=FLIP_MAP)
    yield names
    for name in names:
        MetadataCatalog.remove(name)


def test_create_keypoint_hflip_indices(keypoint_datasets):
    a, b, c = keypoint_datasets
    assert utils.create_keypoint_hflip_indices(a) == [0, 2, 1, 4, 3]  # nose stays, left <-> right
    assert utils.create_keypoint_hflip_indices([a, b]) == [0, 2, 1, 4, 3]
    assert utils.create_keypoint_hflip_indices(c) == [1, 0, 3, 2, 4]  # reversed names
    with pytest.raises(DatasetError, match="_kp_test_c.*keypoint_names="):
        utils.create_keypoint_hflip_indices([a, c])
    utils.check_metadata_consistency("keypoint_flip_map", [a, b, c])
    utils.check_metadata_consistency("keypoint_names", [])


def test_build_augmentation_is_the_test_resize():
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 800, 1333
    (aug,) = utils.build_augmentation(cfg, is_train=False)
    assert isinstance(aug, T.ResizeShortestEdge)
    t = aug.get_transform(np.zeros((480, 640, 3), np.uint8))
    # 800 / 480 = 5/3: 640 * 5/3 = 1066.67 -> 1067; long side under 1333
    assert (t.h, t.w, t.new_h, t.new_w) == (480, 640, 800, 1067)
    t = aug.get_transform(np.zeros((400, 1000, 3), np.uint8))
    # 400 -> 800 would make 2000 > 1333: scaled by 1333 / 2000 -> (533.2, 1333) -> (533, 1333)
    assert (t.new_h, t.new_w) == (533, 1333)
    assert utils.build_transform_gen is utils.build_augmentation
    with pytest.raises(TrainingOnlyError, match="is_train=True, expected False"):
        utils.build_augmentation(cfg, is_train=True)


SAMPLERS = ["TrainingSampler", "RandomSubsetTrainingSampler", "RepeatFactorTrainingSampler", "GroupedBatchSampler"]


@pytest.mark.parametrize("name", SAMPLERS)
def test_training_samplers_import_and_refuse_to_build(name):
    from torch.utils.data import BatchSampler, Sampler

    from detectron2_export.data import samplers

    cls = getattr(samplers, name)
    assert name in samplers.__all__
    assert issubclass(cls, BatchSampler if name == "GroupedBatchSampler" else Sampler)
    with pytest.raises(TrainingOnlyError, match=rf"^detectron2_export\.data\.samplers\.{name} is training-only"):
        cls(10)


def test_inference_sampler_unchanged_beside_them():
    from detectron2_export.data.samplers import InferenceSampler

    assert [list(InferenceSampler(5, rank=r, world_size=2)) for r in range(2)] == [[0, 1, 2], [3, 4]]


TRAINING_LOADER = ["build_detection_train_loader", "build_batch_data_loader", "load_proposals_into_dataset"]


@pytest.mark.parametrize("name", TRAINING_LOADER)
def test_training_loader_names(name):
    import detectron2_export.data as data
    import detectron2_export.data.build as build

    assert name in data.__all__ and name in build.__all__ and getattr(data, name) is getattr(build, name)
    with pytest.raises(TrainingOnlyError, match=rf"^detectron2_export\.data\.build\.{name} is training-only"):
        getattr(data, name)(get_cfg())


def test_print_instances_class_histogram(caplog):
    """Non-crowd instances counted per class, as detectron2.data.build logs them."""
    from detectron2_export.data.build import print_instances_class_histogram

    dicts = [{"annotations": [{"category_id": 0}, {"category_id": 1, "iscrowd": 1}]}, {"annotations": [{"category_id": 0}]}]
    with caplog.at_level("INFO", logger="detectron2_export.data.build"):
        print_instances_class_histogram(dicts, ["a", "b"])
    assert "a: 2, b: 0 (total 2)" in caplog.text
