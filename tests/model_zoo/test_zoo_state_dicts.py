"""Acceptance: every model-zoo config in configs/ builds exactly upstream detectron2's state_dict.

``tests/data/zoo_keys`` holds the keys and shapes upstream detectron2 builds for its 80 zoo configs
(``index.json``: 59 YAML configs, built with get_cfg/merge_from_file/build_model; ``index_lazy.json``:
21 LazyConfig ``.py`` configs, built with ``instantiate(LazyConfig.load(path).model)``), and the
parameter count of each. Models are built on the meta device: the module tree, keys and shapes
are those of a real build (checked once against a CPU build), without allocating or initialising
weights.
"""

import importlib.util
import json
import os

import pytest
import torch

from detectron2_export import model_zoo
from detectron2_export.config import LazyConfig, get_cfg, instantiate
from detectron2_export.modeling import build_model

KEYS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "zoo_keys")


def _index(name):
    with open(os.path.join(KEYS_DIR, name)) as f:
        return json.load(f)


YAML_INDEX = _index("index.json")
LAZY_INDEX = _index("index_lazy.json")
LAZY_KEYED = {k: v for k, v in LAZY_INDEX.items() if "file" in v}


def _expected(entry):
    with open(os.path.join(KEYS_DIR, entry["file"])) as f:
        return json.load(f)


def _shapes(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def _build_yaml(name, device="meta"):
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file(name))
    cfg.MODEL.DEVICE = device
    return build_model(cfg)


def _build_lazy(name):
    cfg = LazyConfig.load(model_zoo.get_config_file(name))
    with torch.device("meta"):
        return instantiate(cfg.model)


def _assert_same_state_dict(model, entry):
    got, expected = _shapes(model), _expected(entry)
    missing = sorted(set(expected) - set(got))
    unexpected = sorted(set(got) - set(expected))
    wrong = {k: (got[k], expected[k]) for k in expected if k in got and got[k] != expected[k]}
    assert not missing and not unexpected and not wrong, (missing[:5], unexpected[:5], list(wrong.items())[:5])
    assert list(got) == list(expected)  # same order: the module tree is upstream's
    assert len(got) == entry["keys"]
    assert sum(p.numel() for p in model.parameters()) == entry["params"]


def test_index_covers_the_80_zoo_configs():
    assert len(YAML_INDEX) == 59 and len(LAZY_KEYED) == 21
    for name in list(YAML_INDEX) + list(LAZY_INDEX):
        assert os.path.isfile(model_zoo.get_config_file(name))


@pytest.mark.parametrize("name", sorted(YAML_INDEX))
def test_yaml_config_builds_upstream_state_dict(name):
    model = _build_yaml(name)
    _assert_same_state_dict(model, YAML_INDEX[name])
    entry = YAML_INDEX[name]
    assert type(model).__name__ == entry["meta_arch"]
    if hasattr(model, "roi_heads"):
        assert type(model.roi_heads).__name__ == entry["roi_heads"]


@pytest.mark.parametrize("name", sorted(LAZY_KEYED))
def test_lazy_config_builds_upstream_state_dict(name):
    model = _build_lazy(name)
    assert type(model).__name__ == LAZY_KEYED[name]["class"]
    _assert_same_state_dict(model, LAZY_KEYED[name])


def test_meta_build_equals_cpu_build():
    """The meta device changes nothing structural: same keys, shapes and dtypes as a CPU build."""
    name = "Misc/mask_rcnn_R_50_FPN_3x_syncbn.yaml"
    meta = _build_yaml(name).state_dict()
    cpu = _build_yaml(name, device="cpu").state_dict()
    assert [(k, v.shape, v.dtype) for k, v in meta.items()] == [(k, v.shape, v.dtype) for k, v in cpu.items()]


def test_mmdet_config_loads_and_names_the_missing_package():
    """Upstream's mmdet example wraps an mmdetection model; without mmdet (as upstream's index
    records) the config loads, with upstream's values, and building the model says mmdet is missing."""
    assert "error" in LAZY_INDEX["Misc/mmdet_mask_rcnn_R_50_FPN_1x.py"]
    cfg = LazyConfig.load(model_zoo.get_config_file("Misc/mmdet_mask_rcnn_R_50_FPN_1x.py"))
    assert cfg.model.detector.roi_head.bbox_head.num_classes == 80
    assert cfg.model.pixel_mean == [123.675, 116.28, 103.53]
    assert cfg.dataloader.train.mapper.image_format == "RGB" and cfg.train.init_checkpoint is None
    if importlib.util.find_spec("mmdet") is not None:
        pytest.skip("mmdet is installed")
    with pytest.raises(ImportError, match="mmdet"):
        instantiate(cfg.model)


def test_torchvision_config_builds_torchvision_resnet50():
    """Upstream's error for this config was its own environment's (no pkg_resources); here the model
    builds, and is torchvision's ResNet-50 under ``model.``."""
    import torchvision

    cfg = LazyConfig.load(model_zoo.get_config_file("Misc/torchvision_imagenet_R_50.py"))
    model = instantiate(cfg.model)
    reference = torchvision.models.resnet50()
    assert _shapes(model) == {"model." + k: list(v.shape) for k, v in reference.state_dict().items()}
    assert cfg.train.max_iter == 100 * 1281167 // 256 and cfg.train.init_checkpoint is None
