"""Standard-ONNX export of the issue-13 zoo architectures: cascade_mask_rcnn_R_50_FPN_3x,
mask_rcnn_R_50_FPN_3x_dconv_c3-c5 (ONNX DeformConv, opset 19), fcos_R_50_FPN_1x and the LazyConfig
mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ. Exported on image A (128x96), run by onnxruntime on A and
on B (176x210), one at a time and as one batch: >= 99% of the eager detections found again (same
class, IoU >= 0.98, score within 0.01) and none added; matched masks IoU >= 0.99 on average.

Weights: the fixed random weights of test_torchscript_zoo_models.py; the RegNet model (BatchNorm,
from SyncBN) gets its BatchNorm statistics from image A and a scaled classifier.
"""

from __future__ import annotations

import onnx
import pytest
import torch
from torch import nn

from detectron2_export.config import instantiate
from detectron2_export.export import OnnxRuntimeModel, export_onnx
from detectron2_export.export.onnx.export import required_opset
from detectron2_export.model_zoo import get_config

from ..test_caffe2_export_models import match_detections
from ..test_torchscript_models import sample_images
from ..test_torchscript_zoo_models import CASCADE, DCONV, FCOS, build_random_model

pytestmark = pytest.mark.slow

REGNET = "mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ"
FOUND_MIN = 0.99
MASK_IOU_MIN = 0.99


def build_regnet_model(image: torch.Tensor) -> nn.Module:
    """The LazyConfig RegNetX-4GF model with BatchNorm statistics of ``image`` (random weights)."""
    cfg = get_config(f"new_baselines/{REGNET}.py")
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()

    def calibrate(module, args):
        if not getattr(module, "_calibrated", False):
            module.running_mean.copy_(args[0].mean(dim=(0, 2, 3)))
            module.running_var.copy_(args[0].var(dim=(0, 2, 3)))
            module._calibrated = True

    hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        model([{"image": image}])
        for hook in hooks:
            hook.remove()
        for name, module in model.named_modules():
            module.__dict__.pop("_calibrated", None)
            if name.endswith("box_predictor.cls_score"):
                module.weight.mul_(30.0)
    return model


@pytest.fixture(scope="module", params=[CASCADE, DCONV, FCOS, REGNET])
def run(request, tmp_path_factory):
    name = request.param
    images = list(sample_images())
    model = build_regnet_model(images[0]) if name == REGNET else build_random_model(name)
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


def _assert_matches(name, e, o):
    assert len(e) >= 5, f"{name}: the init gives {len(e)} eager detections"
    found, matched = match_detections(e, o)
    found_back, _ = match_detections(o, e)
    assert len(found) >= FOUND_MIN * len(e), f"{name}: {len(found)}/{len(e)} found"
    assert len(found_back) >= FOUND_MIN * len(o), f"{name}: {len(found_back)}/{len(o)} found back"
    if e.has("pred_masks"):
        me, mo = e.pred_masks[found], o.pred_masks[matched]
        union = (me | mo).flatten(1).sum(1).float()
        iou = torch.where(union > 0, (me & mo).flatten(1).sum(1).float() / union.clamp(min=1), torch.ones_like(union))
        assert float(iou.mean()) >= MASK_IOU_MIN, f"{name}: mean mask IoU {float(iou.mean()):.4f}"


@pytest.mark.parametrize("image", [0, 1], ids=["A", "B"])
def test_reproduces_eager(run, image):
    name, _, eager, single, batch = run
    _assert_matches(f"{name} image {'AB'[image]}", eager[image], single[image])
    _assert_matches(f"{name} batch image {'AB'[image]}", single[image], batch[image])
