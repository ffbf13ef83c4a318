"""The CLIs' shared steps, without exporting anything: output staging, config checks, error reporting."""

from __future__ import annotations

import logging
import os

import pytest
import torch

from detectron2_export.cli.common import (
    CLIError,
    check_output_dir,
    run_main,
    sample_inputs_from_image,
    setup_cfg,
    setup_logger,
)
from detectron2_export.data import build_detection_test_loader
from detectron2_export.data.detection_utils import read_image
from detectron2_export.errors import ConfigError, ExportError
from detectron2_export.utils.file_io import staged_directory

from .conftest import CONFIG, MODEL_OPTS, SHAPES_IMAGES, only_entries


def test_staged_directory_moves_files_on_success(tmp_path):
    out = tmp_path / "a" / "b" / "out"
    with staged_directory(str(out)) as tmp:
        assert not out.exists(), "the output must not appear before the block succeeds"
        assert os.path.dirname(tmp) == str(tmp_path), "staging happens in the nearest existing ancestor"
        (open(os.path.join(tmp, "model.pb"), "w")).write("x")
        os.mkdir(os.path.join(tmp, "sub"))
    assert only_entries(out) == ["model.pb", "sub"]
    assert only_entries(tmp_path) == ["a"]


def test_staged_directory_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "a" / "out"
    with pytest.raises(RuntimeError, match="boom"):
        with staged_directory(str(out)) as tmp:
            open(os.path.join(tmp, "model.pb"), "w").write("partial")
            raise RuntimeError("boom")
    assert only_entries(tmp_path) == []


def test_staged_directory_replaces_same_names_and_keeps_others(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pb").write_text("old")
    (out / "notes.txt").write_text("mine")
    with staged_directory(str(out)) as tmp:
        open(os.path.join(tmp, "model.pb"), "w").write("new")
    assert (out / "model.pb").read_text() == "new"
    assert (out / "notes.txt").read_text() == "mine"
    assert only_entries(tmp_path) == ["out"]


def test_check_output_dir(tmp_path):
    check_output_dir(str(tmp_path / "new"), overwrite=False)
    check_output_dir(str(tmp_path), overwrite=False)  # exists, empty
    (tmp_path / "f").write_text("x")
    with pytest.raises(CLIError, match=r"exists and is not empty; choose another directory or pass --overwrite"):
        check_output_dir(str(tmp_path), overwrite=False)
    check_output_dir(str(tmp_path), overwrite=True)
    with pytest.raises(CLIError, match=r"exists and is not a directory"):
        check_output_dir(str(tmp_path / "f"), overwrite=True)


def test_setup_cfg_merges_file_then_overrides():
    cfg = setup_cfg(CONFIG, MODEL_OPTS + ["INPUT.MIN_SIZE_TEST", "160"])
    assert cfg.is_frozen()
    assert (cfg.MODEL.RESNETS.DEPTH, cfg.MODEL.ROI_HEADS.NUM_CLASSES) == (18, 3)  # from the file
    assert (cfg.INPUT.MIN_SIZE_TEST, cfg.MODEL.DEVICE) == (160, "cpu")  # from the overrides
    assert cfg.DATALOADER.NUM_WORKERS == 0
    assert "EXPORT_CAFFE2" in cfg
    assert "EXPORT_CAFFE2" not in setup_cfg(CONFIG, MODEL_OPTS, export_config=False)


@pytest.mark.parametrize(
    "config_file, opts, error, message",
    [
        ("", [], CLIError, r"--config-file is required"),
        ("nope.yaml", [], CLIError, r"--config-file 'nope.yaml': no such file"),
        (CONFIG, ["MODEL.DEVICE", "cpu", "MODEL.NO_SUCH_KEY", "1"], ConfigError, r"MODEL\.NO_SUCH_KEY"),
        (CONFIG, ["MODEL.DEVICE"], ConfigError, r"expected KEY VALUE pairs"),
    ],
)
def test_setup_cfg_errors(config_file, opts, error, message):
    with pytest.raises(error, match=message):
        setup_cfg(config_file, opts)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given when CUDA is absent")
def test_setup_cfg_cuda_without_cuda():
    # the config default is MODEL.DEVICE cuda, as in detectron2
    with pytest.raises(ConfigError, match=r"MODEL\.DEVICE='cuda', expected 'cpu' .*append MODEL\.DEVICE cpu"):
        setup_cfg(CONFIG, [])


def test_sample_inputs_from_image_resizes_like_the_test_loader():
    cfg = setup_cfg(CONFIG, MODEL_OPTS + ["INPUT.MIN_SIZE_TEST", "160", "INPUT.MAX_SIZE_TEST", "224"])
    path = os.path.join(SHAPES_IMAGES, "00000.jpg")
    (sample,) = sample_inputs_from_image(cfg, path)
    assert read_image(path).shape[:2] == (374, 281)
    # short edge 281 -> 160: scale 160/281, long edge 374*160/281 = 212.96 -> 213 (<= 224, no max-size clamp)
    assert (sample["height"], sample["width"]) == (374, 281)
    assert sample["image"].shape == (3, 213, 160) and sample["image"].dtype == torch.float32
    # the same pixels as the test loader gives for this image (DatasetMapper, INPUT.FORMAT BGR)
    (from_loader,) = next(iter(build_detection_test_loader(cfg, "shapes_val")))
    assert from_loader["file_name"] == path
    torch.testing.assert_close(sample["image"], from_loader["image"].to(torch.float32), atol=0, rtol=0)


def test_sample_inputs_from_missing_image():
    cfg = setup_cfg(CONFIG, MODEL_OPTS)
    with pytest.raises(CLIError, match=r"--sample-image 'nope\.jpg': no such file"):
        sample_inputs_from_image(cfg, "nope.jpg")


def test_run_main_turns_expected_errors_into_status_1(capsys):
    def fails(argv):
        raise ExportError(f"Caffe2Tracer: inputs={argv}, expected one image")

    assert run_main(fails, ["x"], "tool.py") == 1
    assert capsys.readouterr().err == "tool.py: error: Caffe2Tracer: inputs=['x'], expected one image\n"
    assert run_main(lambda argv: None, [], "tool.py") == 0


def test_run_main_lets_bugs_through():
    def buggy(argv):
        raise ZeroDivisionError("a bug, not a user error")

    with pytest.raises(ZeroDivisionError):
        run_main(buggy, [], "tool.py")


def test_setup_logger_installs_one_handler(capsys):
    package_logger = logging.getLogger("detectron2_export")
    before = list(package_logger.handlers)
    setup_logger()
    setup_logger(verbose=True)
    added = [h for h in package_logger.handlers if h not in before]
    assert len(added) == 1, "a second call replaces the handler instead of duplicating the lines"
    logging.getLogger("detectron2_export.cli.test").debug("hello from the test")
    assert capsys.readouterr().err.count("hello from the test") == 1
