"""Model-level acceptance of the standard-ONNX export (issue 12) on six model-zoo architectures and
the semantic-segmentation one (Misc/semantic_R_50_FPN_1x).

Each model is built with the deterministic random weights that give detections
(``tests/export/test_caffe2_export_models.py``: ``build_random_model``), exported with
``export_onnx`` on image A, saved, and the file must be standard ONNX (full checker, default domain
only, no Loop/If) that a plain ``onnxruntime.InferenceSession`` loads. ``OnnxRuntimeModel`` must
reproduce eager ``model(inputs)`` on images A and B (two sizes): >= 99% of eager detections found
(same class, IoU >= 0.98, score within 0.01) and >= 99% of the exported ones found back; matched
masks IoU >= 0.99 on average; keypoints within 0.01 px; panoptic and semantic maps agree on >= 99%
of the pixels. A and B run as one batch give what they give alone (same criterion).
"""

from __future__ import annotations

import dataclasses
import os

import onnx
import pytest
import torch

from detectron2_export.export import OnnxRuntimeModel, export_onnx

from ..test_caffe2_export_models import CONFIGS, _panoptic_labels, build_random_model
from .helpers import assert_instances_reproduced

pytestmark = pytest.mark.slow

FOUND_MIN = 0.99
MASK_IOU_MIN = 0.99
KEYPOINT_TOL = 0.01
PIXEL_AGREE_MIN = 0.99


@dataclasses.dataclass
class OnnxRun:
    name: str
    path: str
    eager: list[dict]  # eager model(inputs) on A and on B
    single: list[dict]  # OnnxRuntimeModel on A and on B, one at a time
    batch: list[dict]  # OnnxRuntimeModel on [A, B] in one run


ONNX_CONFIGS = CONFIGS + ["Misc/semantic_R_50_FPN_1x"]


@pytest.fixture(scope="module", params=ONNX_CONFIGS, ids=[c.split("/")[1] for c in ONNX_CONFIGS])
def run(request, tmp_path_factory) -> OnnxRun:
    cfg, model, inputs_a, inputs_b = build_random_model(request.param)
    with torch.no_grad():
        eager = [model(inputs_a)[0], model(inputs_b)[0]]
    path = str(tmp_path_factory.mktemp("onnx_" + request.param.split("/")[1]) / "model.onnx")
    onnx.save(export_onnx(cfg, model, inputs_a), path)
    loaded = OnnxRuntimeModel(path)
    single = [loaded(inputs_a)[0], loaded(inputs_b)[0]]
    return OnnxRun(request.param, path, eager, single, loaded(inputs_a + inputs_b))


def test_standard_onnx_file(run):
    onnx.checker.check_model(run.path, full_check=True)
    model = onnx.load(run.path)
    assert {n.domain for n in model.graph.node} <= {"", "ai.onnx"}
    assert not {"Loop", "If", "Scan"} & {n.op_type for n in model.graph.node}
    assert model.ir_version <= 10 and model.opset_import[0].version == 17

    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(run.path, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images", "image_sizes", "output_sizes"]


def _assert_reproduced(name: str, want: dict, got: dict) -> None:
    if "instances" in want:
        assert_instances_reproduced(name, want["instances"], got["instances"], FOUND_MIN, MASK_IOU_MIN, KEYPOINT_TOL)
    if "sem_seg" in want:
        assert got["sem_seg"].shape == want["sem_seg"].shape
        agree = (got["sem_seg"].argmax(0) == want["sem_seg"].argmax(0)).float().mean()
        assert float(agree) >= PIXEL_AGREE_MIN, f"{name}: semantic argmax agrees on {float(agree):.4f}"
    if "panoptic_seg" in want:
        agree = (_panoptic_labels(got["panoptic_seg"]) == _panoptic_labels(want["panoptic_seg"])).float().mean()
        assert float(agree) >= PIXEL_AGREE_MIN, f"{name}: panoptic labels agree on {float(agree):.4f}"


@pytest.mark.parametrize("image", [0, 1], ids=["A", "B"])
def test_reproduces_eager(run, image):
    assert run.single[image].keys() == run.eager[image].keys()
    _assert_reproduced(f"{run.name} image {'AB'[image]}", run.eager[image], run.single[image])


@pytest.mark.parametrize("image", [0, 1], ids=["A", "B"])
def test_batch_equals_single_runs(run, image):
    _assert_reproduced(f"{run.name} batch image {'AB'[image]}", run.single[image], run.batch[image])
