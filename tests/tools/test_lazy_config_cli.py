"""The CLIs' config step with a LazyConfig ``.py`` file: ``key=value`` overrides, and the model it
builds loads the bundled shapes checkpoint strictly and computes what the YAML-built model computes."""

from __future__ import annotations

import os
import textwrap

import pytest
import torch

from detectron2_export.cli.common import CLIError, build_and_load_model, sample_inputs_from_image, setup_cfg

from .conftest import CONFIG, MODEL_OPTS, SHAPES_IMAGES, WEIGHTS

# The shapes model (configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml) as overrides of the zoo's
# LazyConfig Mask R-CNN: ResNet-18, FPN width 128, FC 256, mask convs 128, 3 classes.
SHAPES_OVERRIDES = [
    "model.backbone.bottom_up.stages.depth=18",
    "model.backbone.out_channels=128",
    "model.proposal_generator.head.in_channels=128",
    "model.roi_heads.num_classes=3",
    "model.roi_heads.box_head.input_shape.channels=128",
    "model.roi_heads.box_head.fc_dims=[256, 256]",
    "model.roi_heads.box_predictor.input_shape.channels=256",
    "model.roi_heads.mask_head.input_shape.channels=128",
    "model.roi_heads.mask_head.conv_dims=[128, 128, 128, 128, 128]",
    "model.pixel_std=[57.375, 57.120, 58.395]",
    f"train.init_checkpoint={WEIGHTS}",
]


@pytest.fixture
def lazy_config_file(tmp_path):
    path = tmp_path / "shapes_lazy.py"
    path.write_text(textwrap.dedent("""
        from detectron2_export.model_zoo import get_config

        model = get_config("common/models/mask_rcnn_fpn.py").model
        del model.backbone.bottom_up.stages.stride_in_1x1  # ResNet-18's BasicBlock has no such option
        train = dict(init_checkpoint="")
    """))
    return str(path)


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
