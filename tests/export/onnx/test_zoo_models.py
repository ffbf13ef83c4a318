"""Standard-ONNX export of the issue-13 zoo architectures: cascade_mask_rcnn_R_50_FPN_3x,
mask_rcnn_R_50_FPN_3x_dconv_c3-c5 (ONNX DeformConv, opset 19), fcos_R_50_FPN_1x and the LazyConfig
mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ. Exported on image A (128x96), run by onnxruntime on A and
on B (176x210), one at a time and as one batch: >= 99% of the eager detections found again (same
class, IoU >= 0.98, score within 0.01) and none added; matched masks IoU >= 0.99 on average.

Weights: the fixed random weights of test_torchscript_zoo_models.py.
"""

from __future__ import annotations

import onnx
import pytest
import torch

from detectron2_export.export import OnnxRuntimeModel, export_onnx
from detectron2_export.export.onnx.export import required_opset

from ..test_torchscript_models import sample_images
from ..test_torchscript_zoo_models import CASCADE, DCONV, FCOS, REGNET, build_random_model
from .helpers import assert_instances_reproduced

pytestmark = pytest.mark.slow

FOUND_MIN = 0.99
MASK_IOU_MIN = 0.99


@pytest.fixture(scope="module", params=[CASCADE, DCONV, FCOS, REGNET])
def run(request, tmp_path_factory):
    name = request.param
    images = list(sample_images())
    model = build_random_model(name)
    inputs = [{"image": image} for image in images]
    with torch.no_grad():
        eager = [model([x])[0]["instances"] for x in inputs]
    path = str(tmp_path_factory.mktemp("onnx_" + name) / "model.onnx")
    onnx.save(export_onnx(None, model, inputs[:1], opset=required_opset(model)), path)
    loaded = OnnxRuntimeModel(path)
    single = [loaded([x])[0]["instances"] for x in inputs]
    batch = [x["instances"] for x in loaded(inputs)]
    return name, path, eager, single, batch


def test_standard_onnx(run):
    name, path, *_ = run
    onnx.checker.check_model(path, full_check=True)
    ops = {(n.domain, n.op_type) for n in onnx.load(path).graph.node}
    assert {d for d, _ in ops} <= {"", "ai.onnx"} and not {"Loop", "If"} & {t for _, t in ops}
    assert (("", "DeformConv") in ops) == (name == DCONV)


@pytest.mark.parametrize("image", [0, 1], ids=["A", "B"])
def test_reproduces_eager(run, image):
    name, _, eager, single, batch = run
    assert_instances_reproduced(f"{name} image {'AB'[image]}", eager[image], single[image], FOUND_MIN, MASK_IOU_MIN)
    assert_instances_reproduced(f"{name} batch image {'AB'[image]}", single[image], batch[image], FOUND_MIN, MASK_IOU_MIN)
