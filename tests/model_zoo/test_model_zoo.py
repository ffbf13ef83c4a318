"""model_zoo: bundled config names and upstream checkpoint URLs."""

import os

import pytest

from detectron2_export import model_zoo


def test_get_config_file_resolves_into_configs():
    path = model_zoo.get_config_file("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    assert os.path.isfile(path)
    assert path.endswith(os.path.join("configs", "COCO-InstanceSegmentation", "mask_rcnn_R_50_FPN_3x.yaml"))


def test_unknown_config_is_runtime_error():
    with pytest.raises(RuntimeError, match="not available in Model Zoo"):
        model_zoo.get_config_file("COCO-Detection/does_not_exist.yaml")


def test_checkpoint_url():
    assert model_zoo.get_checkpoint_url("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml") == (
        "https://dl.fbaipublicfiles.com/detectron2/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x/"
        "137849600/model_final_f10217.pkl"
    )
    with pytest.raises(RuntimeError, match="not available"):
        model_zoo.get_checkpoint_url("Base-RCNN-FPN.yaml")


def test_get_config_trained_sets_weights():
    cfg = model_zoo.get_config("COCO-Detection/retinanet_R_50_FPN_3x.yaml", trained=True)
    assert cfg.MODEL.META_ARCHITECTURE == "RetinaNet"
    assert cfg.MODEL.WEIGHTS.endswith("190397829/model_final_5bd44e.pkl")
    untrained = model_zoo.get_config("COCO-Detection/retinanet_R_50_FPN_3x.yaml")
    assert untrained.MODEL.WEIGHTS == "detectron2://ImageNetPretrained/MSRA/R-50.pkl"


def test_every_url_has_a_bundled_config():
    from detectron2_export.model_zoo.model_zoo import _CONFIG_PATH_TO_URL_SUFFIX

    for name in _CONFIG_PATH_TO_URL_SUFFIX:
        ext = ".py" if name.startswith("new_baselines/") else ".yaml"
        assert os.path.isfile(model_zoo.get_config_file(name + ext))
