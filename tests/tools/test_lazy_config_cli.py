"""The CLIs' config step with a LazyConfig ``.py`` file: ``key=value`` overrides, the model it builds
loads the bundled shapes checkpoint strictly and computes what the YAML-built model computes, its
device (``train.device``) and test dataset (``dataloader.test``), and the messages when they are missing."""

from __future__ import annotations

import os

import pytest
import torch

from detectron2_export.cli.common import (
    CLIError,
    build_and_load_model,
    config_device,
    sample_inputs_from_dataset,
    sample_inputs_from_image,
    setup_cfg,
    evaluation_dataset_name,
)
from detectron2_export.errors import ConfigError

from .conftest import CONFIG, MODEL_OPTS, SHAPES_IMAGES, WEIGHTS
from .lazy_shapes import SHAPES_OVERRIDES, write_shapes_lazy_config


@pytest.fixture
def lazy_config_file(tmp_path):
    return write_shapes_lazy_config(str(tmp_path))


def test_lazy_config_model_equals_yaml_model(lazy_config_file):
    torch.manual_seed(0)
    cfg = setup_cfg(lazy_config_file, SHAPES_OVERRIDES)
    assert cfg.model.roi_heads.box_predictor.num_classes == 3 and cfg.train.init_checkpoint == WEIGHTS
    lazy_model = build_and_load_model(cfg)  # strict: every weight of the model must come from the file
    yaml_cfg = setup_cfg(CONFIG, MODEL_OPTS)
    yaml_model = build_and_load_model(yaml_cfg)
    assert list(lazy_model.state_dict()) == list(yaml_model.state_dict())
    inputs = sample_inputs_from_image(yaml_cfg, os.path.join(SHAPES_IMAGES, "00000.jpg"))
    with torch.no_grad():
        lazy_out = lazy_model(inputs)[0]["instances"]
        yaml_out = yaml_model(inputs)[0]["instances"]
    assert len(yaml_out) > 0
    torch.testing.assert_close(lazy_out.pred_boxes.tensor, yaml_out.pred_boxes.tensor, rtol=0, atol=0)
    torch.testing.assert_close(lazy_out.scores, yaml_out.scores, rtol=0, atol=0)
    assert torch.equal(lazy_out.pred_classes, yaml_out.pred_classes)


def test_lazy_config_cli_errors(lazy_config_file):
    with pytest.raises(CLIError, match="expected key=value"):
        setup_cfg(lazy_config_file, ["MODEL.WEIGHTS", WEIGHTS])
    with pytest.raises(CLIError, match="train.init_checkpoint is empty"):
        build_and_load_model(setup_cfg(lazy_config_file, []))


def test_lazy_config_device(lazy_config_file, tmp_path):
    """train.device is the device (as detectron2's lazyconfig_train_net); cpu when the file has none."""
    assert config_device(setup_cfg(lazy_config_file, SHAPES_OVERRIDES)) == "cpu"
    bare = tmp_path / "bare.py"
    bare.write_text('from detectron2_export.model_zoo import get_config\nmodel = get_config("common/models/retinanet.py").model\n')
    assert config_device(setup_cfg(str(bare), [])) == "cpu"
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: train.device=cuda is accepted")
    with pytest.raises(ConfigError, match=r"shapes_lazy\.py: train\.device='cuda', expected 'cpu' since CUDA is not available"):
        setup_cfg(lazy_config_file, ["train.device=cuda"])


def test_lazy_config_without_model(tmp_path):
    path = tmp_path / "no_model.py"
    path.write_text("train = dict(init_checkpoint='')\n")
    with pytest.raises(ConfigError, match=r"no_model\.py: no 'model' in the LazyConfig"):
        setup_cfg(str(path), [])


def test_lazy_config_test_dataset(lazy_config_file):
    cfg = setup_cfg(lazy_config_file, SHAPES_OVERRIDES)
    assert evaluation_dataset_name(cfg) == "shapes_val"
    assert evaluation_dataset_name(setup_cfg(lazy_config_file, ["dataloader.test.dataset.names=['a', 'b']"])) == "a"
    with pytest.raises(CLIError, match="dataloader.test.dataset.names is missing or empty"):
        evaluation_dataset_name(setup_cfg(lazy_config_file, ["dataloader.test.dataset.names=[]"]))


def test_lazy_config_without_dataloader_asks_for_one(tmp_path):
    """A .py file with only model and train: the sample input from the dataset says what is missing,
    and --sample-image needs dataloader.test.mapper."""
    path = tmp_path / "model_only.py"
    path.write_text('from detectron2_export.model_zoo import get_config\nmodel = get_config("common/models/retinanet.py").model\n')
    cfg = setup_cfg(str(path), [])
    with pytest.raises(CLIError, match="dataloader.test.dataset.names is missing"):
        sample_inputs_from_dataset(cfg, torch.nn.Identity())
    cfg.dataloader = {"test": {"dataset": {"names": "shapes_val"}}}
    with pytest.raises(CLIError, match="the LazyConfig has no dataloader.test.mapper, but it reads and resizes the sample input"):
        sample_inputs_from_image(cfg, os.path.join(SHAPES_IMAGES, "00000.jpg"))
