"""tools/export_model.py: every (method, format) pair gives outputs that load and compute what the
eager model computes (SPEC 7.5), --sample-image, --run-eval, and the refused combinations; the same
model as a LazyConfig ``.py`` file (tests/tools/lazy_shapes.py) exports the same files and --run-eval
gives the same AP.

Each export runs once per module (shared by a caching fixture), with 160 px test images to keep it
fast; the module stays on one xdist worker so that the exports are not repeated.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import onnx
import pytest
import torch

from detectron2_export.cli.common import CLIError, build_and_load_model, sample_inputs_from_image, setup_cfg
from detectron2_export.cli.export_model import cli, main
from detectron2_export.structures import Boxes, pairwise_iou

from .conftest import CONFIG, MODEL_OPTS, REPO, SHAPES_IMAGES, SMALL_OPTS, only_entries
from .lazy_shapes import SHAPES_OVERRIDES, write_shapes_lazy_config

pytestmark = pytest.mark.xdist_group("tools_export_model")

IR_FILES = ["model.ts", "model.txt", "model_ts_IR.txt", "model_ts_IR_inlined.txt", "model_ts_code.txt"]
CAFFE2_FILES = ["model.pb", "model.pbtxt", "model.svg", "model_init.pb"]
IMAGE_A = os.path.join(SHAPES_IMAGES, "00000.jpg")  # 374x281: the dataset's first image, has detections
IMAGE_B = os.path.join(SHAPES_IMAGES, "00001.jpg")  # 327x391: another size and aspect ratio


@pytest.fixture(scope="module")
def eager():
    """The eager model and config the exports are made from (160 px test images)."""
    cfg = setup_cfg(CONFIG, SMALL_OPTS)
    return cfg, build_and_load_model(cfg)


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """``export(method, fmt, flags, dataset, lazy) -> (output dir, main's return value)``, each done once.

    ``dataset``: the registered dataset to sample and evaluate on (the config's shapes_val if None);
    ``lazy``: with the LazyConfig twin of the YAML config and its ``key=value`` overrides.
    """
    done: dict[tuple, tuple[str, dict]] = {}
    lazy_config = write_shapes_lazy_config(str(tmp_path_factory.mktemp("lazy_config")))

    def run(
        method: str, fmt: str, flags: tuple[str, ...] = (), dataset: str | None = None, lazy: bool = False
    ) -> tuple[str, dict]:
        key = (method, fmt, flags, dataset, lazy)
        if key not in done:
            out = str(tmp_path_factory.mktemp(f"{method}_{fmt}{'_lazy' if lazy else ''}") / "out")
            argv = ["--config-file", lazy_config if lazy else CONFIG, "--output", out, "--export-method", method,
                    "--format", fmt, *flags]
            if lazy:
                opts = SHAPES_OVERRIDES + ([f"dataloader.test.dataset.names={dataset}"] if dataset else [])
            else:
                opts = SMALL_OPTS + (["DATASETS.TEST", f"('{dataset}',)"] if dataset else [])
            done[key] = (out, main(argv + opts))
        return done[key]

    return run


def eager_raw(model, image: torch.Tensor):
    """Eager outputs before the final resize (what the traced/scripted models return)."""
    with torch.no_grad():
        return model.inference([{"image": image}], do_postprocess=False)[0]


# ----------------------------------------------------------------------------- caffe2_tracing
@pytest.mark.slow
def test_caffe2_tracing_caffe2_loads_and_runs(export, eager):
    from detectron2_export.export import Caffe2Model

    cfg, model = eager
    out, _ = export("caffe2_tracing", "caffe2")
    assert only_entries(out) == CAFFE2_FILES
    loaded = Caffe2Model.load_protobuf(out)
    for path in (IMAGE_A, IMAGE_B):
        inputs = sample_inputs_from_image(cfg, path)
        got = loaded(inputs)[0]["instances"]
        with torch.no_grad():
            want = model(inputs)[0]["instances"]
        assert got.image_size == want.image_size == (inputs[0]["height"], inputs[0]["width"])
        best, match = assert_best_detection_matches(got.pred_boxes, got.scores, got.pred_classes, want.pred_boxes,
                                                    want.scores, want.pred_classes, min_iou=0.95, score_atol=0.03)
        # its mask, pasted into the original image, overlaps eager's
        got_mask, want_mask = got.pred_masks[match], want.pred_masks[best]
        assert got_mask.shape == want_mask.shape == got.image_size
        assert (got_mask & want_mask).sum() / (got_mask | want_mask).sum() >= 0.9


@pytest.mark.slow
def test_caffe2_tracing_onnx_is_valid_onnx_with_caffe2_ops(export):
    out, _ = export("caffe2_tracing", "onnx")
    assert only_entries(out) == ["model.onnx"]
    model = onnx.load(os.path.join(out, "model.onnx"))
    onnx.checker.check_model(model)  # the custom domain's nodes are not schema-checked, the rest is
    assert ("", 11) in {(o.domain, o.version) for o in model.opset_import}
    custom = {n.op_type for n in model.graph.node if n.domain == "org.pytorch._caffe2"}
    assert {"GenerateProposals", "RoIAlign", "BoxWithNMSLimit", "BBoxTransform"} <= custom


@pytest.mark.slow
def test_caffe2_tracing_torchscript_loads_with_the_caffe2_library(export, eager):
    """torch.jit.load needs the _caffe2:: ops (SPEC 7.4); the result must agree with the Caffe2 runtime
    running the protobuf export of the same model (two different executors of the same graph)."""
    import detectron2_export.caffe2.library  # noqa: F401  (registers torch.ops._caffe2, as a user must)
    from detectron2_export.export import Caffe2Model
    from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
    from detectron2_export.export.protobuf_utils import get_pb_arg_floats

    cfg, model = eager
    out, _ = export("caffe2_tracing", "torchscript")
    assert only_entries(out) == IR_FILES
    ts_model = torch.jit.load(os.path.join(out, "model.ts"))
    caffe2_model = Caffe2Model.load_protobuf(export("caffe2_tracing", "caffe2")[0])
    pad_value = get_pb_arg_floats(caffe2_model.predict_net, "pad_value", None)
    for path in (IMAGE_A, IMAGE_B):
        inputs = sample_inputs_from_image(cfg, path)
        data, im_info = convert_batched_inputs_to_c2_format(
            inputs, model.backbone.size_divisibility, "cpu", pad_value
        )
        with torch.no_grad():
            bbox_nms, score_nms, class_nms, mask_probs = ts_model((data, im_info))
        assert mask_probs.shape == (len(bbox_nms), cfg.MODEL.ROI_HEADS.NUM_CLASSES, 28, 28)
        ref = caffe2_model(inputs)[0]["instances"]
        # Caffe2Model's outputs are resized to the original image: undo it on the TorchScript boxes
        scale = torch.tensor([inputs[0]["width"] / im_info[0, 1], inputs[0]["height"] / im_info[0, 0]] * 2)
        boxes = Boxes(bbox_nms * scale)
        boxes.clip(ref.image_size)
        assert len(boxes) == len(ref)
        torch.testing.assert_close(boxes.tensor, ref.pred_boxes.tensor, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(score_nms, ref.scores, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(class_nms.to(torch.int64), ref.pred_classes)


@pytest.mark.slow
def test_caffe2_tracing_torchscript_in_a_fresh_process(export):
    """What a user does: only ``import detectron2_export.caffe2.library`` before torch.jit.load."""
    out, _ = export("caffe2_tracing", "torchscript")
    load = f"import torch; torch.jit.load({os.path.join(out, 'model.ts')!r}); print('loaded')"
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    with_library = subprocess.run([sys.executable, "-c", "import detectron2_export.caffe2.library; " + load],
                                  capture_output=True, text=True, timeout=300, env=env)
    assert with_library.returncode == 0 and with_library.stdout == "loaded\n", with_library.stderr[-2000:]
    without = subprocess.run([sys.executable, "-c", load], capture_output=True, text=True, timeout=300, env=env)
    assert without.returncode != 0 and "_caffe2" in without.stderr


# ------------------------------------------------------------------------------------ tracing
@pytest.mark.slow
def test_tracing_torchscript_runs_like_eager_and_evaluates(export, eager, shapes_val_10):
    """Exported from the dataset's first image with --run-eval on a 10-image dataset; the loaded model
    equals eager on that image and on another size; the AP equals eager's on the same dataset."""
    from detectron2_export.data import build_detection_test_loader
    from detectron2_export.evaluation import COCOEvaluator, inference_on_dataset

    cfg, model = eager
    out, results = export("tracing", "torchscript", ("--run-eval",), shapes_val_10)
    assert only_entries(out) == IR_FILES
    ts_model = torch.jit.load(os.path.join(out, "model.ts"))
    for path in (IMAGE_A, IMAGE_B):
        image = sample_inputs_from_image(cfg, path)[0]["image"]
        boxes, classes, masks, scores, image_size = ts_model(image)  # the flattened Instances fields
        want = eager_raw(model, image)
        assert tuple(image_size.tolist()) == tuple(image.shape[1:])
        torch.testing.assert_close(boxes, want.pred_boxes.tensor, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(scores, want.scores, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(classes, want.pred_classes)
        torch.testing.assert_close(masks, want.pred_masks, atol=1e-5, rtol=1e-4)

    loader = build_detection_test_loader(cfg, shapes_val_10)
    expected = inference_on_dataset(model, loader, COCOEvaluator(shapes_val_10), progress=False)
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert results[task]["AP"] == pytest.approx(expected[task]["AP"], abs=0.01)
        assert results[task]["AP50"] == pytest.approx(expected[task]["AP50"], abs=0.01)


@pytest.mark.slow
def test_tracing_onnx_is_standard_and_evaluates(export, eager, shapes_val_10, capsys):
    """``--export-method tracing --format onnx`` writes the standard-ONNX export: default-domain ops,
    dynamic batch/height/width; stock onnxruntime runs it on other sizes than the sample, it
    reproduces eager ``model(inputs)`` (detections at the original size, pasted masks), and
    --run-eval gives eager's AP."""
    from detectron2_export.data import build_detection_test_loader
    from detectron2_export.evaluation import COCOEvaluator, inference_on_dataset
    from detectron2_export.export import OnnxRuntimeModel

    cfg, model = eager
    out, results = export("tracing", "onnx", ("--run-eval",), shapes_val_10)
    printed = capsys.readouterr().out
    assert "PyTorch" in printed and "onnxruntime" in printed and "delta" in printed, "AP beside PyTorch's"
    assert only_entries(out) == ["model.onnx"]
    onnx_model = onnx.load(os.path.join(out, "model.onnx"))
    onnx.checker.check_model(onnx_model, full_check=True)
    assert all(n.domain in ("", "ai.onnx") for n in onnx_model.graph.node), "standard ONNX ops only"
    images = onnx_model.graph.input[0]
    assert [d.dim_param for d in images.type.tensor_type.shape.dim] == ["batch", "", "height", "width"]

    ort_model = OnnxRuntimeModel(os.path.join(out, "model.onnx"))
    for path in (IMAGE_A, IMAGE_B):
        inputs = sample_inputs_from_image(cfg, path)
        got = ort_model(inputs)[0]["instances"]
        with torch.no_grad():
            want = model(inputs)[0]["instances"]
        assert got.image_size == want.image_size == (inputs[0]["height"], inputs[0]["width"])
        assert len(got) == len(want) > 0
        torch.testing.assert_close(got.pred_boxes.tensor, want.pred_boxes.tensor, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(got.scores, want.scores, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(got.pred_classes, want.pred_classes)
        agree = (got.pred_masks == want.pred_masks).float().mean()
        assert float(agree) >= 0.999, f"pasted masks agree on {float(agree):.5f} of the pixels"

    loader = build_detection_test_loader(cfg, shapes_val_10)
    expected = inference_on_dataset(model, loader, COCOEvaluator(shapes_val_10), progress=False)
    assert set(results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert results[task]["AP"] == pytest.approx(expected[task]["AP"], abs=0.05)


# ---------------------------------------------------------------------------------- scripting
@pytest.mark.slow
def test_scripting_torchscript_runs_like_eager(export, eager):
    cfg, model = eager
    out, _ = export("scripting", "torchscript")
    assert only_entries(out) == IR_FILES
    scripted = torch.jit.load(os.path.join(out, "model.ts"))
    for path in (IMAGE_A, IMAGE_B):
        image = sample_inputs_from_image(cfg, path)[0]["image"]
        (got,) = scripted(({"image": image},))
        want = eager_raw(model, image)
        assert set(got) == {"pred_boxes", "scores", "pred_classes", "pred_masks"}
        torch.testing.assert_close(got["pred_boxes"], want.pred_boxes.tensor, atol=1e-3, rtol=1e-4)
        torch.testing.assert_close(got["scores"], want.scores, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got["pred_classes"], want.pred_classes)
        torch.testing.assert_close(got["pred_masks"], want.pred_masks, atol=1e-5, rtol=1e-4)


# ------------------------------------------------------------------------- LazyConfig .py file
EXPORTS = [
    ("caffe2_tracing", "caffe2", CAFFE2_FILES),
    ("caffe2_tracing", "onnx", ["model.onnx"]),
    ("caffe2_tracing", "torchscript", IR_FILES),
    ("tracing", "torchscript", IR_FILES),
    ("tracing", "onnx", ["model.onnx"]),
    ("scripting", "torchscript", IR_FILES),
]


def _flags_and_dataset(method: str, fmt: str, dataset: str) -> tuple[tuple[str, ...], str | None]:
    """The tracing pairs as their tests above run them (--run-eval on the 10 images): shared exports."""
    return (("--run-eval",), dataset) if method == "tracing" else ((), None)


@pytest.mark.slow
@pytest.mark.parametrize("method, fmt, files", EXPORTS, ids=[f"{m}+{f}" for m, f, _ in EXPORTS])
def test_lazy_config_exports_what_the_yaml_config_exports(export, shapes_val_10, method, fmt, files):
    """The same files; the Caffe2 nets and the ONNX graphs equal message for message, the traced code
    equal, the scripted models' outputs equal."""
    from detectron2_export.export import Caffe2Model

    flags, dataset = _flags_and_dataset(method, fmt, shapes_val_10)
    lazy_out, _ = export(method, fmt, flags, dataset, lazy=True)
    yaml_out, _ = export(method, fmt, flags, dataset)
    assert only_entries(lazy_out) == only_entries(yaml_out) == files
    if fmt == "caffe2":
        lazy_model, yaml_model = Caffe2Model.load_protobuf(lazy_out), Caffe2Model.load_protobuf(yaml_out)
        assert lazy_model.predict_net == yaml_model.predict_net and lazy_model.init_net == yaml_model.init_net
    elif fmt == "onnx":
        lazy_graph = onnx.load(os.path.join(lazy_out, "model.onnx")).graph
        assert lazy_graph == onnx.load(os.path.join(yaml_out, "model.onnx")).graph
    elif method == "scripting":
        # its code holds attributes the two builders set differently (unused: anchor_matcher, int/float
        # thresholds), compiled into slightly different code: measured max |diff| 3e-5 px, 3e-6 score
        image = sample_inputs_from_image(setup_cfg(CONFIG, SMALL_OPTS), IMAGE_A)[0]["image"]
        with torch.no_grad():
            (lazy_fields,) = torch.jit.load(os.path.join(lazy_out, "model.ts"))(({"image": image},))
            (yaml_fields,) = torch.jit.load(os.path.join(yaml_out, "model.ts"))(({"image": image},))
        assert lazy_fields.keys() == yaml_fields.keys() and len(yaml_fields["scores"]) > 0
        for name, want in yaml_fields.items():
            torch.testing.assert_close(lazy_fields[name], want, atol=1e-4, rtol=1e-5)
    else:
        def code(out: str) -> str:
            """The traced code without the numbering of classes compiled again in one process."""
            with open(os.path.join(out, "model_ts_code.txt")) as f:
                return re.sub(r"___torch_mangle_\d+\.", "", f.read())

        assert code(lazy_out) == code(yaml_out)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_lazy_config_run_eval_gives_the_yaml_config_ap(export, shapes_val_10, fmt):
    """dataloader.test / dataloader.evaluator of the .py file on the same 10 images and weights: the AP
    of the YAML run, within 1e-6 (same model, same graph, same inputs: the same detections)."""
    _, lazy_results = export("tracing", fmt, ("--run-eval",), shapes_val_10, lazy=True)
    _, yaml_results = export("tracing", fmt, ("--run-eval",), shapes_val_10)
    assert set(lazy_results) == set(yaml_results) == {"bbox", "segm"}
    for task in ("bbox", "segm"):
        assert lazy_results[task]["AP"] > 10  # a real evaluation
        assert lazy_results[task] == pytest.approx(yaml_results[task], abs=1e-6, nan_ok=True)


def test_lazy_config_sample_image_uses_the_test_mapper(tmp_path):
    """--sample-image with a .py config: resized by dataloader.test.mapper as the YAML's INPUT resizes."""
    lazy_cfg = setup_cfg(write_shapes_lazy_config(str(tmp_path)), SHAPES_OVERRIDES)
    lazy, yaml = (sample_inputs_from_image(c, IMAGE_B)[0] for c in (lazy_cfg, setup_cfg(CONFIG, SMALL_OPTS)))
    assert (lazy["height"], lazy["width"]) == (yaml["height"], yaml["width"]) == (327, 391)
    assert lazy["image"].shape == yaml["image"].shape and min(lazy["image"].shape[1:]) == 160
    assert torch.equal(lazy["image"], yaml["image"])


# ------------------------------------------------------------------------------ JIT settings
def _fusion_strategy() -> list[tuple[str, int]]:
    """The process's current JIT fusion strategy (read by setting it and putting it back)."""
    current = torch._C._jit_set_fusion_strategy([("DYNAMIC", 3)])
    torch._C._jit_set_fusion_strategy(current)
    return current


def test_static_jit_fusion_is_scoped():
    from detectron2_export.export.deploy import static_jit_fusion

    before = _fusion_strategy()
    assert before != [("STATIC", 1)]
    with pytest.raises(RuntimeError, match="inside"):
        with static_jit_fusion():
            assert _fusion_strategy() == [("STATIC", 1)]
            raise RuntimeError("inside")
    assert _fusion_strategy() == before


@pytest.mark.slow
def test_main_leaves_the_jit_fusion_strategy_as_it_was(tmp_path):
    """export_model.py sets the static strategy for its export and evaluation only (upstream changed
    the process's setting for good)."""
    before = _fusion_strategy()
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out"), "--export-method", "tracing",
            "--sample-image", IMAGE_B]
    main(argv + SMALL_OPTS)
    assert only_entries(tmp_path / "out") == IR_FILES
    assert _fusion_strategy() == before


# ------------------------------------------------------------------------ refused combinations
@pytest.mark.parametrize(
    "method, fmt, extra, message",
    [
        ("scripting", "onnx", [], "--export-method scripting --format onnx: Scripting only supports torchscript"),
        ("scripting", "caffe2", [], "Scripting only supports torchscript format."),
        ("tracing", "caffe2", [], "for Caffe2 use --export-method caffe2_tracing"),
        ("caffe2_tracing", "torchscript", ["--run-eval"], "export_method=caffe2_tracing, format=torchscript"),
        ("scripting", "torchscript", ["--run-eval"], "export_method=scripting, format=torchscript"),
    ],
)
def test_refused_combinations(capsys, tmp_path, method, fmt, extra, message):
    out = tmp_path / "out"
    argv = ["--config-file", CONFIG, "--output", str(out), "--export-method", method, "--format", fmt] + extra
    assert cli(argv + MODEL_OPTS) == 1
    err = capsys.readouterr().err
    assert "export_model.py: error: " in err and message in err
    assert only_entries(tmp_path) == []


def test_missing_sample_image(capsys, tmp_path):
    argv = ["--config-file", CONFIG, "--output", str(tmp_path / "out"), "--sample-image", str(tmp_path / "x.jpg")]
    assert cli(argv + SMALL_OPTS) == 1
    assert f"--sample-image '{tmp_path / 'x.jpg'}': no such file" in capsys.readouterr().err
    assert only_entries(tmp_path) == []


def test_defaults_are_upstream_head():
    from detectron2_export.cli.export_model import get_parser

    args = get_parser().parse_args(["--output", "o"])
    assert (args.export_method, args.format) == ("tracing", "torchscript")
    assert (args.sample_image, args.run_eval) == (None, False)


# ------------------------------------------------------------------------------------- helpers
def assert_best_detection_matches(
    boxes, scores, classes, ref_boxes, ref_scores, ref_classes, *, min_iou, score_atol
) -> tuple[int, int]:
    """The reference's most confident detection has a counterpart of the same class, overlapping it by
    ``min_iou`` and scoring within ``score_atol``. Returns (reference index, counterpart index)."""
    best = int(torch.argmax(ref_scores))
    same_class = (classes.to(torch.int64) == ref_classes[best]).nonzero().flatten()
    assert len(same_class) > 0, f"no detection of class {int(ref_classes[best])}"
    ious = pairwise_iou(Boxes(ref_boxes.tensor[best : best + 1]), Boxes(boxes.tensor[same_class]))[0]
    match = same_class[int(torch.argmax(ious))]
    assert float(ious.max()) >= min_iou, f"best IoU {float(ious.max()):.3f} < {min_iou}"
    assert abs(float(scores[match]) - float(ref_scores[best])) <= score_atol, (
        f"score {float(scores[match]):.4f} vs {float(ref_scores[best]):.4f}"
    )
    return best, int(match)


@pytest.mark.slow
def test_tracing_onnx_int8_quantizes_and_reports_the_ap_change(export, shapes_val_10, capsys):
    """``--quantize int8``: the QDQ graph (standard ops only), calibrated on the evaluation dataset's
    first images; --run-eval prints its AP beside PyTorch's. Issue 17's 1.0 budget holds on all 200
    images (tests/export/onnx/test_quantize.py; this CLI measured bbox +0.01, segm -0.31 there); on
    these 10 images at 160 px one detection moves AP by about a point (measured bbox +2.1), hence 3.0."""
    out, results = export("tracing", "onnx", ("--run-eval", "--quantize", "int8", "--calibration-images", "4"),
                          shapes_val_10)
    printed = capsys.readouterr().out
    assert "onnxruntime int8" in printed and "delta" in printed
    onnx_model = onnx.load(os.path.join(out, "model.onnx"))
    ops = {n.op_type for n in onnx_model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and all(n.domain in ("", "ai.onnx") for n in onnx_model.graph.node)
    fp32_out, fp32_results = export("tracing", "onnx", ("--run-eval",), shapes_val_10)  # shared with the fp32 test
    for task in ("bbox", "segm"):
        assert abs(results[task]["AP"] - fp32_results[task]["AP"]) <= 3.0, (task, results[task]["AP"], fp32_results[task]["AP"])
    assert results["bbox"] != fp32_results["bbox"], "the int8 graph was evaluated, not the fp32 one"


def test_quantize_is_refused_outside_tracing_onnx(tmp_path):
    with pytest.raises(CLIError, match="--quantize int8 --export-method caffe2_tracing --format caffe2: quantization"):
        main(["--config-file", CONFIG, "--output", str(tmp_path / "o"), "--export-method", "caffe2_tracing",
              "--format", "caffe2", "--quantize", "int8", *MODEL_OPTS])
    assert not (tmp_path / "o").exists()
