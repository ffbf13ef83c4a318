"""cpp/torchscript/torchscript_mask_rcnn (SPEC 8.4): built with CMake against the pip wheel's libtorch,
run on a shapes image with the bundled shapes Mask R-CNN exported by tracing (and by scripting), it
must print the detections the same model gives in Python."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.config import get_cfg
from detectron2_export.export import TracingAdapter, scripting_with_instances
from detectron2_export.export.deploy import SCRIPTING_FIELDS, ScriptableRCNNAdapter
from detectron2_export.modeling import build_model

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE_DIR = os.path.join(REPO_ROOT, "cpp", "torchscript")
DETECTION = re.compile(
    r"^detection (\d+): class=(-?\d+) score=([-\d.]+) box=\[([-\d.]+), ([-\d.]+), ([-\d.]+), ([-\d.]+)\]$", re.M
)


@pytest.fixture(scope="module")
def binary(tmp_path_factory) -> str:
    if shutil.which("cmake") is None:
        pytest.skip("cmake is not installed (make apt installs it)")
    build = tmp_path_factory.mktemp("torchscript_cpp_build")
    for cmd in (
        ["cmake", "-S", SOURCE_DIR, "-B", str(build), f"-DPython3_EXECUTABLE={sys.executable}"],
        ["cmake", "--build", str(build), "-j2"],
    ):
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return str(build / "torchscript_mask_rcnn")


@pytest.fixture(scope="module")
def shapes_model() -> nn.Module:
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg)
    DetectionCheckpointer(model).load(os.path.join(REPO_ROOT, "models", "mask_rcnn_R_18_FPN_shapes.pkl"))
    return model.eval()


@pytest.fixture(scope="module")
def image(tmp_path_factory) -> tuple[str, torch.Tensor]:
    """A shapes validation image, stored as PNG so that OpenCV and PIL decode the same pixels
    (their JPEG decoders may differ), and as the (3, H, W) float BGR tensor the model takes."""
    rgb = np.asarray(Image.open(os.path.join(REPO_ROOT, "datasets", "shapes", "val", "00000.jpg")).convert("RGB"))
    path = tmp_path_factory.mktemp("image") / "input.png"
    Image.fromarray(rgb).save(path)
    return str(path), torch.as_tensor(rgb[:, :, ::-1].copy()).permute(2, 0, 1).float()


def _run(binary: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=600)


def _parse(stdout: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rows = DETECTION.findall(stdout)
    assert [int(r[0]) for r in rows] == list(range(len(rows)))
    classes = torch.tensor([int(r[1]) for r in rows])
    scores = torch.tensor([float(r[2]) for r in rows])
    boxes = torch.tensor([[float(v) for v in r[3:]] for r in rows]).reshape(-1, 4)
    return boxes, scores, classes


def _check_output(stdout: str, boxes: Tensor, scores: Tensor, classes: Tensor) -> None:
    n = len(scores)
    assert n > 0
    assert re.search(r"^Latency \(should vary with different inputs\): [\d.e-]+ seconds$", stdout, re.M)
    assert f"Number of detected objects: {n}\n" in stdout
    assert f"pred_boxes: CPUFloatType [{n}, 4]\n" in stdout
    assert f"pred_masks: CPUFloatType [{n}, 1, 28, 28]\n" in stdout
    cpp_boxes, cpp_scores, cpp_classes = _parse(stdout)
    assert torch.equal(cpp_classes, classes)
    torch.testing.assert_close(cpp_scores, scores, rtol=0, atol=1e-3)
    torch.testing.assert_close(cpp_boxes, boxes, rtol=0, atol=1e-3)


def test_usage(binary):
    proc = _run(binary, "model.ts")
    assert proc.returncode == 1 and "Usage:" in proc.stderr
    proc = _run(binary, "model.ts", "input.png", "onnx")
    assert proc.returncode == 1 and "EXPORT_METHOD=onnx" in proc.stderr


def test_traced_model_prints_the_python_detections(binary, shapes_model, image, tmp_path):
    path, tensor = image

    def inference(model, inputs):
        return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]

    adapter = TracingAdapter(shapes_model, [{"image": tensor}], inference)
    with torch.no_grad():
        traced = torch.jit.trace(adapter, (tensor,))
    traced.save(str(tmp_path / "model.ts"))
    with torch.no_grad():
        expected = adapter.outputs_schema(torch.jit.load(str(tmp_path / "model.ts"))(tensor))[0]["instances"]

    proc = _run(binary, str(tmp_path / "model.ts"), path, "tracing")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_output(proc.stdout, expected.pred_boxes.tensor, expected.scores, expected.pred_classes)


def test_scripted_model_prints_the_python_detections(binary, shapes_model, image, tmp_path):
    path, tensor = image
    scripted = scripting_with_instances(ScriptableRCNNAdapter(shapes_model), SCRIPTING_FIELDS)  # export_model's
    scripted.save(str(tmp_path / "model.ts"))
    with torch.no_grad():
        expected = shapes_model.inference([{"image": tensor}], do_postprocess=False)[0]

    proc = _run(binary, str(tmp_path / "model.ts"), path, "scripting")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _check_output(proc.stdout, expected.pred_boxes.tensor, expected.scores, expected.pred_classes)
