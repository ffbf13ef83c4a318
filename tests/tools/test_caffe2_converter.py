"""tools/caffe2_converter.py: user errors (exit status 1, a message saying what to do, no output left
behind), the output-directory rules, and one real conversion with --run-eval on a 10-image dataset."""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tomllib

import pytest
import torch

from detectron2_export.checkpoint import load_checkpoint_file
from detectron2_export.cli import caffe2_converter, export_model
from detectron2_export.cli.caffe2_converter import cli, format_summary, main
from detectron2_export.errors import ExportError
from detectron2_export.export import Caffe2Model, Caffe2Tracer

from .conftest import CONFIG, MODEL_OPTS, REPO, SMALL_OPTS, WEIGHTS, only_entries
from .lazy_shapes import SHAPES_OVERRIDES, write_shapes_lazy_config


def run_cli(capsys, argv: list[str]) -> tuple[int, str]:
    """Exit status and stderr of ``cli(argv)``."""
    status = cli(argv)
    return status, capsys.readouterr().err


def cells(table_line: str) -> list[str]:
    """The stripped cells of a markdown table line."""
    return [c.strip() for c in table_line.split("|")[1:-1]]


def error_line(stderr: str, prog: str = caffe2_converter.PROG) -> str:
    """The one line run_main prints (the logger's lines come before it)."""
    lines = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error: ")]
    assert len(lines) == 1, stderr[-2000:]
    return lines[0]


# ------------------------------------------------------------------------------------------ errors
def test_missing_config_file(capsys, tmp_path):
    out = tmp_path / "out"
    status, err = run_cli(capsys, ["--config-file", str(tmp_path / "nope.yaml"), "--output", str(out)] + MODEL_OPTS)
    assert status == 1
    assert "--config-file" in error_line(err) and "nope.yaml" in error_line(err) and "no such file" in err
    assert only_entries(tmp_path) == []


def test_config_file_flag_is_required(capsys, tmp_path):
    status, err = run_cli(capsys, ["--output", str(tmp_path / "out")] + MODEL_OPTS)
    assert status == 1
    assert "--config-file is required" in error_line(err)
    assert only_entries(tmp_path) == []


def test_missing_weights_file(capsys, tmp_path):
    out = tmp_path / "out"
    weights = str(tmp_path / "w.pkl")
    argv = ["--config-file", CONFIG, "--output", str(out), "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", weights]
    status, err = run_cli(capsys, argv)
    assert status == 1
    line = error_line(err)
    assert "MODEL.WEIGHTS" in line and "w.pkl" in line and "does not exist" in line
    assert only_entries(tmp_path) == []


def test_empty_weights(capsys, tmp_path):
    status, err = run_cli(capsys, ["--config-file", CONFIG, "--output", str(tmp_path / "out"), "MODEL.DEVICE", "cpu"])
    assert status == 1
    assert "MODEL.WEIGHTS is empty: append MODEL.WEIGHTS <path" in error_line(err)
    assert only_entries(tmp_path) == []


def test_weights_with_a_wrongly_shaped_tensor(capsys, tmp_path):
    """A .pth whose classifier was trained for 4 classes (5 logits) instead of the config's 3."""
    checkpoint = load_checkpoint_file(WEIGHTS)
    state_dict = {k: torch.as_tensor(v) for k, v in checkpoint["model"].items()}
    state_dict["roi_heads.box_predictor.cls_score.weight"] = torch.zeros(5, 256)
    pth = tmp_path / "wrong.pth"
    torch.save({"model": state_dict}, pth)
    out = tmp_path / "out"
    argv = ["--config-file", CONFIG, "--output", str(out), "MODEL.DEVICE", "cpu", "MODEL.WEIGHTS", str(pth)]
    status, err = run_cli(capsys, argv)
    assert status == 1
    assert "does not fit the model built from the config (1 weights not loaded)" in error_line(err)
    assert "roi_heads.box_predictor.cls_score.weight: shape (5, 256) in the checkpoint, (4, 256) in the model" in err
    assert "Check that the config file and the checkpoint belong together" in err
    assert only_entries(tmp_path) == ["wrong.pth"]


def test_weights_of_a_model_with_another_depth(capsys, tmp_path):
    """The R-18 checkpoint with the config's depth changed to 34: blocks res2.2, res3.2, ... are missing."""
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out")] + MODEL_OPTS + ["MODEL.RESNETS.DEPTH", "34"]
    status, err = run_cli(capsys, argv)
    assert status == 1
    assert "does not fit the model built from the config" in error_line(err)
    assert "backbone.bottom_up.res2.2.conv1.weight: missing from the checkpoint" in err
    assert only_entries(tmp_path) == []


def test_unknown_config_key(capsys, tmp_path):
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out")] + MODEL_OPTS + ["MODEL.NO_SUCH_KEY", "1"]
    status, err = run_cli(capsys, argv)
    assert status == 1
    assert "MODEL.NO_SUCH_KEY" in error_line(err)
    assert only_entries(tmp_path) == []


def test_dataset_files_missing(capsys, tmp_path):
    """A registered dataset whose json does not exist: the message names the file."""
    from tests.data.helpers import registered_coco

    with registered_coco({"images": [], "annotations": [], "categories": []}, str(tmp_path)) as name:
        os.remove(tmp_path / f"{name}.json")
        out = tmp_path / "out"
        argv = ["--config-file", CONFIG, "--output", str(out)] + MODEL_OPTS + ["DATASETS.TEST", f"('{name}',)"]
        status, err = run_cli(capsys, argv)
    assert status == 1
    line = error_line(err)
    assert f"{name}.json" in line and "does not exist" in line
    assert only_entries(tmp_path) == []


def test_no_test_dataset(capsys, tmp_path):
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out")] + MODEL_OPTS + ["DATASETS.TEST", "()"]
    status, err = run_cli(capsys, argv)
    assert status == 1
    assert "DATASETS.TEST is empty, but the sample input is taken from it" in error_line(err)
    assert only_entries(tmp_path) == []


@pytest.mark.slow
def test_builtin_coco_missing_under_detectron2_datasets(tmp_path):
    """The README scenario: a COCO model-zoo config with $DETECTRON2_DATASETS pointing to a directory
    without coco/. Run as a fresh process (the builtin paths are fixed at import) via tools/."""
    empty = tmp_path / "datasets"
    empty.mkdir()
    out = tmp_path / "out"
    argv = [sys.executable, os.path.join(REPO, "tools", "caffe2_converter.py"), "--config-file", CONFIG,
            "--output", str(out)] + MODEL_OPTS + ["DATASETS.TEST", "('coco_2017_val',)"]
    env = dict(os.environ, DETECTRON2_DATASETS=str(empty), OMP_NUM_THREADS="1")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert proc.returncode == 1, proc.stderr[-3000:]
    line = error_line(proc.stderr)
    assert "coco_2017_val" in line
    assert os.path.join(str(empty), "coco", "annotations", "instances_val2017.json") in line
    assert "Set DETECTRON2_DATASETS to the directory that contains coco/" in line
    assert "Traceback" not in proc.stderr
    assert only_entries(tmp_path) == ["datasets"] and only_entries(empty) == []


def test_output_dir_not_empty(capsys, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    status, err = run_cli(capsys, ["--config-file", CONFIG, "--output", str(out)] + MODEL_OPTS)
    assert status == 1
    assert f"--output '{out}' exists and is not empty; choose another directory or pass --overwrite" in error_line(err)
    assert only_entries(out) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_output_is_a_file(capsys, tmp_path):
    (tmp_path / "out").write_text("x")
    status, err = run_cli(capsys, ["--config-file", CONFIG, "--output", str(tmp_path / "out")] + MODEL_OPTS)
    assert status == 1
    assert "exists and is not a directory" in error_line(err)


def _no_model_build(cfg):
    raise AssertionError("the model was built: the output check must come before any export work")


@pytest.mark.parametrize("tool", [caffe2_converter, export_model], ids=["caffe2_converter", "export_model"])
def test_output_under_a_regular_file_fails_before_any_work(capsys, tmp_path, monkeypatch, tool):
    monkeypatch.setattr(tool, "build_and_load_model", _no_model_build)
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "sub" / "out"
    assert tool.cli(["--config-file", CONFIG, "--output", str(out)] + MODEL_OPTS) == 1
    line = error_line(capsys.readouterr().err, tool.PROG)
    assert line == (f"{tool.PROG}: error: --output '{out}': '{tmp_path / 'file'}' is a file, not a directory; "
                    "choose a path under a directory")
    assert only_entries(tmp_path) == ["file"]


@pytest.mark.parametrize("tool", [caffe2_converter, export_model], ids=["caffe2_converter", "export_model"])
def test_output_in_an_unwritable_place_fails_before_any_work(capsys, monkeypatch, tool):
    """/sys refuses new directories even to root (a chmod'ed directory would not stop root)."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(dir="/sys"))
        pytest.skip("/sys is writable here")
    except OSError:
        pass
    monkeypatch.setattr(tool, "build_and_load_model", _no_model_build)
    assert tool.cli(["--config-file", CONFIG, "--output", "/sys/d2export_out"] + MODEL_OPTS) == 1
    line = error_line(capsys.readouterr().err, tool.PROG)
    assert line.startswith(f"{tool.PROG}: error: --output '/sys/d2export_out': cannot write in '/sys' (")
    assert line.endswith("); choose a writable directory")
    assert not os.path.exists("/sys/d2export_out")


def test_os_error_during_the_export_is_one_line(capsys, tmp_path, monkeypatch):
    """An OSError that is no project error (disk full, permissions changed meanwhile) is not a traceback."""
    def fail(cfg, model, inputs, fmt, output_dir):
        raise PermissionError(13, "Permission denied", os.path.join(output_dir, "model.pb"))

    monkeypatch.setattr(caffe2_converter, "export_caffe2_tracing", fail)
    out = tmp_path / "out"
    status, err = run_cli(capsys, ["--config-file", CONFIG, "--output", str(out)] + SMALL_OPTS)
    assert status == 1
    assert error_line(err).startswith("caffe2_converter.py: error: [Errno 13] Permission denied: ")
    assert error_line(err).endswith("model.pb'") and "Traceback" not in err
    assert only_entries(tmp_path) == []


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_run_eval_needs_caffe2_format(capsys, tmp_path, fmt):
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out"), "--format", fmt, "--run-eval"] + MODEL_OPTS
    status, err = run_cli(capsys, argv)
    assert status == 1
    assert f"--run-eval with --format {fmt}: Python inference in other format is not yet supported" in error_line(err)
    assert only_entries(tmp_path) == []


def test_bad_format_is_an_argparse_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli(["--config-file", CONFIG, "--output", str(tmp_path / "out"), "--format", "tflite"])
    assert exc.value.code == 2
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


# ----------------------------------------------------------------- failures during the export
def test_export_error_leaves_no_output(capsys, tmp_path, monkeypatch):
    def fail(self):
        raise ExportError("Caffe2Tracer: simulated failure")

    monkeypatch.setattr(Caffe2Tracer, "export_caffe2", fail)
    out = tmp_path / "a" / "b" / "out"
    status, err = run_cli(capsys, ["--config-file", CONFIG, "--output", str(out)] + SMALL_OPTS)
    assert status == 1
    assert error_line(err) == "caffe2_converter.py: error: Caffe2Tracer: simulated failure"
    assert only_entries(tmp_path) == [], "neither the output, its parents nor a temporary directory remain"


def test_crash_while_writing_leaves_no_output(tmp_path, monkeypatch):
    """A bug (not a user error) after the first file is written: it propagates, nothing remains."""

    class HalfWritten:
        def save_protobuf(self, output_dir):
            with open(os.path.join(output_dir, "model.pb"), "w") as f:
                f.write("partial")

        def save_graph(self, output_file, inputs=None):
            assert os.path.isfile(os.path.join(os.path.dirname(output_file), "model.pb"))
            raise RuntimeError("crash while drawing the graph")

    monkeypatch.setattr(Caffe2Tracer, "export_caffe2", lambda self: HalfWritten())
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="crash while drawing the graph"):
        cli(["--config-file", CONFIG, "--output", str(out)] + SMALL_OPTS)
    assert only_entries(tmp_path) == []


# ------------------------------------------------------------------------- output directory rules
def fake_export(cfg, model, inputs, fmt, output_dir):
    """Stands in for the export: writes the caffe2 files with placeholder contents."""
    for name in ("model.pb", "model_init.pb", "model.pbtxt", "model.svg"):
        with open(os.path.join(output_dir, name), "w") as f:
            f.write(f"new {name}")


def test_overwrite_replaces_the_model_files_and_keeps_the_rest(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(caffe2_converter, "export_caffe2_tracing", fake_export)
    out = tmp_path / "out"
    out.mkdir()
    (out / "model.pb").write_text("old")
    (out / "notes.txt").write_text("mine")
    assert cli(["--config-file", CONFIG, "--output", str(out), "--overwrite"] + SMALL_OPTS) == 0
    assert only_entries(out) == ["model.pb", "model.pbtxt", "model.svg", "model_init.pb", "notes.txt"]
    assert (out / "model.pb").read_text() == "new model.pb" and (out / "notes.txt").read_text() == "mine"
    assert only_entries(tmp_path) == ["out"]
    assert "Wrote model.pb, model.pbtxt, model.svg, model_init.pb, notes.txt to" in capsys.readouterr().err


def test_existing_empty_output_dir_is_fine(tmp_path, monkeypatch):
    monkeypatch.setattr(caffe2_converter, "export_caffe2_tracing", fake_export)
    (tmp_path / "out").mkdir()
    assert cli(["--config-file", CONFIG, "--output", str(tmp_path / "out")] + SMALL_OPTS) == 0
    assert len(only_entries(tmp_path / "out")) == 4


def test_format_summary():
    eager = {"bbox": {"AP": 41.467, "AP50": 60.7}, "segm": {"AP": 47.743}}
    converted = {"bbox": {"AP": 41.464, "AP50": 61.2}, "segm": {"AP": 48.027}}
    assert format_summary(eager, converted, "shapes_val") == (
        "Summary on shapes_val, PyTorch -> Caffe2: bbox AP 41.467 -> 41.464 (-0.003); "
        "segm AP 47.743 -> 48.027 (+0.284)"
    )
    assert format_summary({"bbox": {"AP": 1.0}}, {}, "d").endswith("no common AP metric")


# ----------------------------------------------------------------------------- a real conversion
@pytest.fixture(scope="module")
def converted(tmp_path_factory, shapes_val_10):
    """``run(lazy) -> (output dir, main's results, stdout)`` of the README command on the 10 images,
    with the YAML config or its LazyConfig twin (tests/tools/lazy_shapes.py); each done once."""
    done: dict[bool, tuple[str, dict, str]] = {}

    def run(lazy: bool) -> tuple[str, dict, str]:
        if lazy not in done:
            tmp = tmp_path_factory.mktemp("lazy_convert" if lazy else "convert")
            if lazy:
                config = write_shapes_lazy_config(str(tmp_path_factory.mktemp("lazy_config")))
                opts = SHAPES_OVERRIDES + [f"dataloader.test.dataset.names={shapes_val_10}"]
            else:
                config, opts = CONFIG, SMALL_OPTS + ["DATASETS.TEST", f"('{shapes_val_10}',)"]
            stdout = io.StringIO()
            with contextlib.redirect_stdout(stdout):
                results = main(["--config-file", config, "--output", str(tmp / "out"), "--run-eval"] + opts)
            done[lazy] = (str(tmp / "out"), results, stdout.getvalue())
        return done[lazy]

    return run


@pytest.mark.slow
def test_convert_and_evaluate_on_10_images(converted, shapes_val_10):
    """The README command on a 10-image dataset: the four files, the side-by-side table, the summary.

    Independent reference for the PyTorch column: the eager model evaluated directly here.
    """
    from detectron2_export.cli.common import build_and_load_model, setup_cfg
    from detectron2_export.data import build_detection_test_loader
    from detectron2_export.evaluation import COCOEvaluator, inference_on_dataset

    out, results, stdout = converted(lazy=False)
    opts = SMALL_OPTS + ["DATASETS.TEST", f"('{shapes_val_10}',)"]

    assert only_entries(out) == ["model.pb", "model.pbtxt", "model.svg", "model_init.pb"]
    assert only_entries(os.path.dirname(out)) == ["out"]
    Caffe2Model.load_protobuf(out)  # the files parse

    cfg = setup_cfg(CONFIG, opts)
    loader = build_detection_test_loader(cfg, shapes_val_10)
    eager = inference_on_dataset(build_and_load_model(cfg), loader, COCOEvaluator(shapes_val_10), progress=False)
    for task in ("bbox", "segm"):
        assert results["PyTorch"][task] == pytest.approx(eager[task], abs=1e-9, nan_ok=True)
        # a working export is close to eager, a broken one far off. The known Caffe2 differences
        # (SPEC 3.14) weigh more on 10 images at 160 px: measured bbox AP 31.29 -> 31.31, segm
        # 35.62 -> 35.65 here (21:55 UTC 2026-12-06), vs |delta| <= 0.3 AP on all 200 images at 288 px
        assert abs(results["Caffe2"][task]["AP"] - eager[task]["AP"]) < 5.0

    lines = stdout.splitlines()
    assert lines[0] == f"COCO AP on {shapes_val_10}, PyTorch vs Caffe2 (delta = Caffe2 - PyTorch):"
    assert cells(lines[1]) == ["task", "metric", "PyTorch", "Caffe2", "delta"]
    bbox_ap = next(cells(line) for line in lines if cells(line)[:2] == ["bbox", "AP"])
    pt, c2 = results["PyTorch"]["bbox"]["AP"], results["Caffe2"]["bbox"]["AP"]
    assert bbox_ap[2:4] == [f"{pt:.3f}", f"{c2:.3f}"] and float(bbox_ap[4]) == pytest.approx(c2 - pt, abs=1e-3)
    assert lines[-1] == format_summary(results["PyTorch"], results["Caffe2"], shapes_val_10)


@pytest.mark.slow
def test_lazy_config_converts_and_evaluates_as_the_yaml_config(converted):
    """The LazyConfig twin (dataloader.test, dataloader.evaluator, key=value overrides) on the same
    weights and images: the same Caffe2 nets and, for both models, the YAML run's AP within 1e-6."""
    lazy_out, lazy_results, lazy_stdout = converted(lazy=True)
    yaml_out, yaml_results, yaml_stdout = converted(lazy=False)
    assert only_entries(lazy_out) == only_entries(yaml_out)
    lazy_model, yaml_model = Caffe2Model.load_protobuf(lazy_out), Caffe2Model.load_protobuf(yaml_out)
    assert lazy_model.predict_net == yaml_model.predict_net and lazy_model.init_net == yaml_model.init_net
    for model in ("PyTorch", "Caffe2"):
        for task in ("bbox", "segm"):
            assert lazy_results[model][task]["AP"] > 10  # a real evaluation
            assert lazy_results[model][task] == pytest.approx(yaml_results[model][task], abs=1e-6, nan_ok=True)
    assert lazy_stdout == yaml_stdout


@pytest.mark.slow
def test_lazy_config_through_the_tools_script(tmp_path):
    """``python tools/caffe2_converter.py --config-file X.py key=value ...`` exits 0 and writes the files."""
    config = write_shapes_lazy_config(str(tmp_path))
    out = tmp_path / "out"
    argv = [sys.executable, os.path.join(REPO, "tools", "caffe2_converter.py"), "--config-file", config,
            "--output", str(out)] + SHAPES_OVERRIDES
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert only_entries(out) == ["model.pb", "model.pbtxt", "model.svg", "model_init.pb"]
    assert "Exported GeneralizedRCNN to caffe2" in proc.stderr


# ------------------------------------------------------------------------------ console scripts
def test_console_scripts_declared():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts["d2export-caffe2-converter"] == "detectron2_export.cli.caffe2_converter:cli"
    assert scripts["d2export-export-model"] == "detectron2_export.cli.export_model:cli"


def test_console_scripts_installed():
    """After ``pip install -e .`` the entry points resolve to the cli functions and --help works."""
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="console_scripts")}
    if "d2export-caffe2-converter" not in found:
        pytest.skip("detectron2-export is not pip-installed in this environment")
    from detectron2_export.cli import export_model

    assert found["d2export-caffe2-converter"].load() is cli
    assert found["d2export-export-model"].load() is export_model.cli
    exe = shutil.which("d2export-caffe2-converter")
    if exe is None:
        pytest.skip("the console scripts' directory is not on PATH")
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage: caffe2_converter.py" in proc.stdout and "--run-eval" in proc.stdout


@pytest.mark.slow
@pytest.mark.skipif(not __import__("detectron2_export.caffe2.precision", fromlist=["x"]).bf16_supported(),
                    reason="this CPU has no native bfloat16 (oneDNN)")
def test_precision_bf16_evaluates_the_bf16_runtime(converted, shapes_val_10, tmp_path):
    """``--precision bf16``: the same fp32 files, evaluated with bfloat16 convolutions; issue 17's 1.0
    budget is asserted on all 200 images (tests/caffe2/test_precision.py: bbox 41.525 vs 41.466, segm
    47.691 vs 47.743); on these 10 images at 160 px one detection moves AP by about a point, hence 3.0."""
    _, fp32_results, _ = converted(False)
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        results = main(["--config-file", CONFIG, "--output", str(tmp_path / "out"), "--run-eval", "--precision", "bf16",
                        *SMALL_OPTS, "DATASETS.TEST", f"('{shapes_val_10}',)"])
    assert stdout.getvalue().splitlines()[0] == f"COCO AP on {shapes_val_10}, PyTorch vs Caffe2 in bf16 (delta = Caffe2 - PyTorch):"
    aps = {run: {t: r[t]["AP"] for t in ("bbox", "segm")} for run, r in
           (("fp32", fp32_results["Caffe2"]), ("bf16", results["Caffe2"]), ("eager", results["PyTorch"]))}
    assert aps["eager"] == {t: fp32_results["PyTorch"][t]["AP"] for t in ("bbox", "segm")}
    for task in ("bbox", "segm"):
        assert abs(aps["bf16"][task] - aps["fp32"][task]) <= 3.0, aps
