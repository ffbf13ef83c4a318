"""The CLIs' config step with a LazyConfig ``.py`` file: ``key=value`` overrides, and the model it
builds loads the bundled shapes checkpoint strictly and computes what the YAML-built model computes."""

from __future__ import annotations

import os

import pytest
import torch

from detectron2_export.cli.common import CLIError, build_and_load_model, sample_inputs_from_image, setup_cfg

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
