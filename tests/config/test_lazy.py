"""LazyConfig: LazyCall/instantiate, .py configs with relative imports, save/load round trip,
apply_overrides, errors, and model_zoo.get_config for .py configs."""

import logging
import os
import textwrap

import pytest
import torch
from omegaconf import DictConfig

from detectron2_export import model_zoo
from detectron2_export.config import LazyCall as L
from detectron2_export.config import LazyConfig, instantiate
from detectron2_export.config.instantiate import InstantiateError
from detectron2_export.config.lazy import ConfigImportError
from detectron2_export.errors import ConfigError
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.backbone.regnet import SimpleStem


def _write(root, name, text):
    path = os.path.join(root, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def _shapes(model):
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_lazy_call_records_and_instantiate_builds():
    cfg = L(ShapeSpec)(channels=3, height="${.width}", width=7)
    # a dataclass target is stored as its dotted path (omegaconf cannot hold a dataclass type)
    assert isinstance(cfg, DictConfig) and cfg._target_ == "detectron2_export.layers.ShapeSpec" and cfg.height == 7
    assert instantiate(cfg) == ShapeSpec(channels=3, height=7, width=7)
    nested = L(dict)  # a callable that is a type is fine as a target
    assert nested._target is dict
    built = instantiate({"_target_": "detectron2_export.layers.ShapeSpec", "channels": [1, L(ShapeSpec)(stride=2)]})
    assert built == ShapeSpec(channels=[1, ShapeSpec(stride=2)])
    assert isinstance(built.channels, list)  # ListConfig becomes a plain list
    with pytest.raises(TypeError, match="callable"):
        L(3)


def test_instantiate_wrong_argument_names_the_target():
    with pytest.raises(InstantiateError, match="ShapeSpec.*colors"):
        instantiate(L(ShapeSpec)(colors=3))
    with pytest.raises(ImportError, match="no module named 'not_a_package'"):
        instantiate({"_target_": "not_a_package.Thing"})


def test_py_config_relative_imports_are_fresh_copies(tmp_path):
    root = str(tmp_path)
    _write(root, "common/base.py", """
        from detectron2_export.config import LazyCall as L
        from detectron2_export.layers import ShapeSpec
        spec = L(ShapeSpec)(channels=4, stride=8)
        train = dict(max_iter=100, amp=dict(enabled=False))
    """)
    child = _write(root, "exp/child.py", """
        from ..common.base import spec, train
        spec.channels = 16
        train.max_iter *= 2
        _private = dict(a=1)
        number = 3
    """)
    cfg = LazyConfig.load(child)
    assert sorted(cfg.keys()) == ["spec", "train"]  # dicts and configs only, no private names
    assert cfg.train.max_iter == 200 and isinstance(cfg.train, DictConfig)
    assert instantiate(cfg.spec) == ShapeSpec(channels=16, stride=8)
    base = LazyConfig.load(os.path.join(root, "common/base.py"))
    assert base.spec.channels == 4 and base.train.max_iter == 100  # the child's edits did not leak
    assert LazyConfig.load(child, keys="train").max_iter == 200
    spec, train = LazyConfig.load(child, keys=("spec", "train"))
    assert spec.stride == 8 and train.amp.enabled is False


def test_load_errors(tmp_path):
    root = str(tmp_path)
    with pytest.raises(ConfigError, match="expected a .py, .yaml or .yml"):
        LazyConfig.load(_write(root, "a.txt", "x = 1\n"))
    with pytest.raises(ConfigError, match="line 2"):
        LazyConfig.load(_write(root, "bad.py", "x = dict(\ny = )\n"))
    missing = _write(root, "exp/m.py", "from ..nothere.cfg import model\n")
    with pytest.raises(ConfigImportError, match="nothere/cfg.py does not exist"):
        LazyConfig.load(missing)
    with pytest.raises(ImportError):  # ConfigImportError is an ImportError, as upstream's
        LazyConfig.load(missing)
    with pytest.raises(ConfigError, match="does not exist"):
        LazyConfig.load(os.path.join(root, "none.py"))


def test_save_load_round_trip_rebuilds_the_same_model(tmp_path):
    """The RegNetX config has classes as arguments (stem_class), tuples and interpolations."""
    name = "COCO-InstanceSegmentation/mask_rcnn_regnetx_4gf_dds_fpn_1x.py"
    cfg = model_zoo.get_config(name)
    path = str(tmp_path / "cfg.yaml")
    LazyConfig.save(cfg, path)
    text = open(path).read()
    assert "_target_: detectron2_export.modeling.GeneralizedRCNN" in text  # the shortest importable path
    assert "in_features: ${.bottom_up.out_features}" in text  # interpolations are kept unresolved
    loaded = LazyConfig.load(path)
    assert loaded.model.backbone.bottom_up.stem_class is SimpleStem
    assert list(loaded.model.proposal_generator.pre_nms_topk) == [2000, 1000]
    assert loaded.model.roi_heads.box_head.input_shape._target_ == "detectron2_export.layers.ShapeSpec"
    assert loaded.train.init_checkpoint == cfg.train.init_checkpoint
    assert loaded.optimizer.weight_decay == 5e-5
    with torch.device("meta"):
        original, rebuilt = instantiate(cfg.model), instantiate(loaded.model)
    assert _shapes(rebuilt) == _shapes(original)


def test_save_unloadable_config_warns(tmp_path, caplog):
    """The LSJ configs hold a lambda (the heads' norm): written for reading, with a warning."""
    cfg = model_zoo.get_config("new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py")
    path = str(tmp_path / "lsj.yaml")
    with caplog.at_level(logging.WARNING):
        LazyConfig.save(cfg, path)
    assert os.path.isfile(path) and "max_iter: 184375" in open(path).read()
    assert any("cannot be loaded" in r.getMessage() for r in caplog.records)


def test_apply_overrides():
    cfg = model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.py")
    LazyConfig.apply_overrides(cfg, [
        "model.roi_heads.num_classes=10",
        "train.init_checkpoint=",
        "train.output_dir=out/dir",
        "model.proposal_generator.head.conv_dims=[-1, -1]",
        "optimizer.lr=0.5",
        "train.new_key=(1, 2)",
    ])
    assert cfg.model.roi_heads.num_classes == 10 and cfg.model.roi_heads.box_predictor.num_classes == 10
    assert cfg.train.init_checkpoint == "" and cfg.train.output_dir == "out/dir"
    assert cfg.optimizer.lr == 0.5 and list(cfg.train.new_key) == [1, 2]
    with torch.device("meta"):
        model = instantiate(cfg.model)
    assert model.roi_heads.box_predictor.cls_score.weight.shape == (11, 1024)
    assert model.roi_heads.mask_head.predictor.weight.shape[0] == 10
    assert model.proposal_generator.rpn_head.conv.conv1.weight.shape == (256, 256, 3, 3)
    with pytest.raises(ConfigError, match="expected key=value"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter"])
    with pytest.raises(ConfigError, match="train.max_iter is a int"):
        LazyConfig.apply_overrides(cfg, ["train.max_iter.x=1"])


def test_model_zoo_get_config_py():
    cfg = model_zoo.get_config("new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py", trained=True)
    assert isinstance(cfg, DictConfig)
    assert cfg.train.init_checkpoint == (
        "https://dl.fbaipublicfiles.com/detectron2/new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ/"
        "42047764/model_final_bb69de.pkl"
    )
    assert cfg.train.max_iter == 184375 and cfg.optimizer.lr == 0.1
    assert cfg.lr_multiplier.scheduler.milestones == [163889, 177546]
    assert cfg.lr_multiplier.warmup_length == pytest.approx(500 / 184375)
    c200 = model_zoo.get_config("new_baselines/mask_rcnn_R_50_FPN_200ep_LSJ.py")
    assert c200.train.max_iter == 2 * 184375 and c200.lr_multiplier.scheduler.milestones == [327778, 355092]
    assert c200.lr_multiplier.scheduler.num_updates == 2 * 184375
    c50 = model_zoo.get_config("new_baselines/mask_rcnn_R_50_FPN_50ep_LSJ.py")
    assert c50.train.max_iter == 184375 // 2 and c50.lr_multiplier.scheduler.milestones == [81944, 88773]
    assert model_zoo.get_config_file("Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml").endswith(
        os.path.join("configs", "Misc", "cascade_mask_rcnn_R_50_FPN_3x.yaml"))
    assert model_zoo.get_config("common/train.py").train.max_iter == 90000


def test_dataloader_test_instantiates_with_project_classes(tmp_path):
    cfg = model_zoo.get_config("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_1x.py")
    mapper = instantiate(cfg.dataloader.test.mapper)
    assert type(mapper).__module__.startswith("detectron2_export.") and mapper.image_format == "BGR"
    assert cfg.dataloader.evaluator.dataset_name == "coco_2017_val"
    assert cfg.dataloader.train.total_batch_size == 16
    with pytest.raises(ImportError, match="detectron2"):  # training: detectron2's own loader
        instantiate(cfg.dataloader.train.mapper)


def test_lsj_training_augmentations_are_training_only():
    from detectron2_export.utils.training_only import TrainingOnlyError

    cfg = model_zoo.get_config("new_baselines/mask_rcnn_R_50_FPN_100ep_LSJ.py")
    resize, crop, flip = cfg.dataloader.train.mapper.augmentations
    assert (resize.min_scale, resize.max_scale, resize.target_height) == (0.1, 2.0, 1024)
    assert list(crop.crop_size) == [1024, 1024] and flip.horizontal is True
    assert instantiate(flip).horizontal is True  # a real (test-time) augmentation
    with pytest.raises(TrainingOnlyError, match="ResizeScale"):
        instantiate(resize)


def test_load_rel_is_relative_to_the_calling_file():
    train = LazyConfig.load_rel("../../configs/common/train.py", keys="train")
    assert train.max_iter == 90000 and train.ddp.fp16_compression is False
