"""tools/analyze_model.py: --tasks flop activation parameter structure for a config."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from detectron2_export.cli.analyze_model import cli, main
from detectron2_export.cli.common import build_and_load_model, setup_cfg
from detectron2_export.data import DatasetCatalog
from detectron2_export.utils.analysis import activation_count_operators, flop_count_operators

from .conftest import CONFIG, MODEL_OPTS, REPO, SMALL_OPTS
from .lazy_shapes import SHAPES_OVERRIDES, write_shapes_lazy_config

# zero images of 64x64 instead of the dataset's: identical, cheap inputs
FIXED_OPTS = MODEL_OPTS + ["INPUT.CROP.TYPE", "absolute", "INPUT.CROP.SIZE", "(64, 64)"]


def test_parameter_task_counts_every_parameter(caplog):
    with caplog.at_level(logging.INFO, logger="detectron2_export"):
        results = main(["--tasks", "parameter", "--config-file", CONFIG] + MODEL_OPTS)
    model = build_and_load_model(setup_cfg(CONFIG, MODEL_OPTS, export_config=False))
    counts = results["parameter"]
    assert counts[""] == sum(p.numel() for p in model.parameters())
    assert 14.3e6 < counts[""] < 14.5e6  # the bundled model's 14.4 M parameters
    assert counts["roi_heads.mask_head.deconv"] == 128 * 128 * 2 * 2 + 128
    assert "Parameter Count:" in caplog.text and "| roi_heads.mask_head.deconv.weight" in caplog.text


def test_structure_task_prints_the_module_tree(caplog):
    with caplog.at_level(logging.INFO, logger="detectron2_export"):
        results = main(["--tasks", "structure", "--config-file", CONFIG] + MODEL_OPTS)
    structure = results["structure"]
    assert structure.startswith("GeneralizedRCNN(")
    assert "(mask_head): MaskRCNNConvUpsampleHead(" in structure and "(fpn_lateral2): Conv2d(64, 128" in structure
    assert "Model Structure:\nGeneralizedRCNN(" in caplog.text


@pytest.mark.slow
def test_flop_and_activation_tasks_average_over_inputs():
    """Two identical (fixed-size) inputs: the averages equal the counts of one, the spread is 0."""
    results = main(["--config-file", CONFIG, "--tasks", "flop", "activation", "-n", "2", "--use-fixed-input-size"]
                   + FIXED_OPTS)
    cfg = setup_cfg(CONFIG, FIXED_OPTS, export_config=False)
    model = build_and_load_model(cfg)
    first = DatasetCatalog.get(cfg.DATASETS.TEST[0])[0]
    inputs = [{"image": torch.zeros(3, 64, 64), "height": first["height"], "width": first["width"]}]
    flops, activations = results["flop"], results["activation"]
    assert flops["num_inputs"] == activations["num_inputs"] == 2
    assert flops["by_operator"] == pytest.approx(flop_count_operators(model, inputs), rel=1e-9)
    assert flops["total_mean"] == pytest.approx(sum(flops["by_operator"].values()), rel=1e-9)
    assert flops["total_std"] == 0.0
    assert flops["by_operator"]["conv"] > 0.1  # ResNet-18 + FPN on 64x64: a few hundred MFlops
    assert activations["by_operator"] == pytest.approx(dict(activation_count_operators(model, inputs)), rel=1e-9)
    assert activations["total_std"] == 0.0


@pytest.mark.slow
def test_lazy_config_flops_on_its_test_loader_equal_the_yaml_config_flops(tmp_path):
    """The inputs of a .py file come from its dataloader.test: the shapes LazyConfig twin (same model,
    same first image at 160 px) counts the flops and activations the YAML config counts."""
    lazy_argv = ["--config-file", write_shapes_lazy_config(str(tmp_path)), "--tasks", "flop", "activation", "-n", "1"]
    lazy = main(lazy_argv + SHAPES_OVERRIDES)
    yaml = main(["--config-file", CONFIG, "--tasks", "flop", "activation", "-n", "1"] + SMALL_OPTS)
    for task in ("flop", "activation"):
        assert lazy[task]["num_inputs"] == yaml[task]["num_inputs"] == 1
        assert lazy[task]["by_operator"] == pytest.approx(yaml[task]["by_operator"], rel=1e-9)
    assert yaml["flop"]["by_operator"]["conv"] > 0.5  # ResNet-18 + FPN on a 160 x 213 image: > 0.5 GFlops


def test_lazy_config_parameter_count_as_upstream():
    """A LazyConfig .py file: upstream's RetinaNet R50-FPN parameter count (tests/test_model_analysis.py)."""
    config = os.path.join(REPO, "configs", "COCO-Detection", "retinanet_R_50_FPN_1x.py")
    assert main(["--config-file", config, "--tasks", "parameter"])["parameter"][""] == 37915572


@pytest.mark.parametrize("argv, message", [
    (["--config-file", os.path.join(REPO, "configs", "COCO-Detection", "retinanet_R_50_FPN_1x.py"), "--tasks", "flop",
      "--use-fixed-input-size"], "--use-fixed-input-size with a LazyConfig .py file: expected a .yaml config"),
    (["--config-file", CONFIG, "--tasks", "flop", "--use-fixed-input-size"] + MODEL_OPTS,
     "--use-fixed-input-size: INPUT.CROP.TYPE='relative_range', expected 'absolute'"),
    (["--config-file", CONFIG, "--tasks", "activation", "-n", "0"] + MODEL_OPTS, "--num-inputs=0, expected an int >= 1"),
    (["--tasks", "parameter"], "--config-file is required"),
])
def test_user_errors_are_one_line(capsys, argv, message):
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert f"analyze_model.py: error: {message}" in err


def test_tasks_are_required(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--config-file", CONFIG])
    assert info.value.code == 2 and "--tasks" in capsys.readouterr().err
