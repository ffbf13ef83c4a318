"""TorchScript tracing of the issue-13 zoo models: cascade_mask_rcnn_R_50_FPN_3x,
mask_rcnn_R_50_FPN_3x_dconv_c3-c5, fcos_R_50_FPN_1x and the LazyConfig
mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ.

Each is traced through ``TracingAdapter`` on image A (128x96), saved, loaded back and run on A
and on image B (176x210), and compared with the eager model: >= 99% of the eager detections found
again (same class, IoU >= 0.98, score within 0.01) and none added; matched masks within 1e-3. The
graphs hold only aten/prim/torchvision ops (checked below), which test_torchscript_tracing.py
shows a process with only torch and torchvision runs.

Weights: fixed random, made to give detections as in test_torchscript_models.py (residual
branches scaled by 0.1, classifiers scaled). The deformable model's offset convs get small random
weights (mean |offset| ~0.8 px), so the trace samples between pixels instead of at the zero
offsets of a fresh model; FCOS's box branch gets a bias of 1 stride, so its boxes are not empty.
The RegNet model (BatchNorm, from SyncBN) gets its BatchNorm statistics from image A and a scaled
classifier.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from detectron2_export.config import instantiate
from detectron2_export.errors import ExportError
from detectron2_export.export import Caffe2Tracer, TracingAdapter
from detectron2_export.model_zoo import get_config
from detectron2_export.modeling import build_model

from ..modeling.roi_heads.test_cascade_rcnn import cascade_cfg
from ..modeling.test_deform_resnet import build_on_meta, dconv_cfg
from ..modeling.test_meta_arch_fcos import fcos_r50_fpn
from .test_caffe2_export_models import match_detections
from .test_torchscript_models import all_nodes, rcnn_inference, sample_images

pytestmark = pytest.mark.slow

FOUND_MIN = 0.99
CASCADE = "cascade_mask_rcnn_R_50_FPN_3x"
DCONV = "mask_rcnn_R_50_FPN_3x_dconv_c3-c5"
FCOS = "fcos_R_50_FPN_1x"
REGNET = "mask_rcnn_regnetx_4gf_dds_FPN_100ep_LSJ"
# classifier weight scale giving a few dozen detections on both images (checked below)
CLASSIFIER_SCALE = {CASCADE: 0.6, DCONV: 0.4, FCOS: 2.0, REGNET: 30.0}
OFFSET_STD = 0.003


def build_regnet_model() -> nn.Module:
    """The LazyConfig RegNetX-4GF model with BatchNorm statistics of image A (random weights).

    The classifier is scaled first, so that the mask head sees detections when its BatchNorms are
    calibrated (an empty input would give them NaN statistics)."""
    cfg = get_config(f"new_baselines/{REGNET}.py")
    torch.manual_seed(0)
    model = instantiate(cfg.model).eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]

    def calibrate(module, args):
        if not getattr(module, "_calibrated", False) and args[0].shape[0] > 0:
            module.running_mean.copy_(args[0].mean(dim=(0, 2, 3)))
            module.running_var.copy_(args[0].var(dim=(0, 2, 3)))
            module._calibrated = True

    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("box_predictor.cls_score"):
                module.weight.mul_(CLASSIFIER_SCALE[REGNET])
        hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
        for _ in range(3):
            model([{"image": sample_images()[0]}])
            if all(getattr(m, "_calibrated", False) for m in norms):
                break
        for hook in hooks:
            hook.remove()
    assert all(m.__dict__.pop("_calibrated", False) for m in norms), "a BatchNorm saw no input"
    return model


def build_random_model(name: str) -> nn.Module:
    """The model of ``name`` with its fixed random weights (CPU, eval)."""
    if name == REGNET:
        return build_regnet_model()
    torch.manual_seed(0)
    if name == FCOS:
        model = fcos_r50_fpn().eval()
    else:
        cfg = cascade_cfg() if name == CASCADE else dconv_cfg()
        cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 100  # keeps the R-CNN heads cheap on the CPU
        model = build_model(cfg).eval()
    with torch.no_grad():
        for module_name, module in model.named_modules():
            if module_name.endswith("conv3.norm"):
                module.weight.mul_(0.1)
            elif module_name.endswith("conv2_offset"):
                module.weight.normal_(std=OFFSET_STD)
            elif module_name.endswith("cls_score"):
                module.weight.mul_(CLASSIFIER_SCALE[name])
            elif module_name == "head.bbox_pred":
                module.bias.fill_(1.0)
    return model


def _inference(name: str):
    """export_model.py's tracing function: raw R-CNN instances, post-processed dense detections."""
    return (lambda model, inputs: model(inputs)) if name == FCOS else rcnn_inference


@pytest.fixture(scope="module", params=[CASCADE, DCONV, FCOS, REGNET])
def traced(request, tmp_path_factory):
    """(name, traced module, eager outputs on A and B, outputs of the saved and reloaded traced
    module on A and B)."""
    name = request.param
    model = build_random_model(name)
    inference = _inference(name)
    images = list(sample_images())
    with torch.no_grad():
        eager = [inference(model, [{"image": image}])[0]["instances"] for image in images]
        adapter = TracingAdapter(model, [{"image": images[0]}], inference)
        # the comparison below is the check (check_trace would run the model twice more)
        ts_model = torch.jit.trace(adapter, (images[0],), check_trace=False)
        path = str(tmp_path_factory.mktemp(name) / "model.ts")
        ts_model.save(path)
        loaded = torch.jit.load(path)
        exported = [adapter.outputs_schema(loaded(image))[0]["instances"] for image in images]
    return name, ts_model, eager, exported


@pytest.mark.parametrize("image", [0, 1], ids=["A", "B"])
def test_detections_reproduced(traced, image):
    name, _, eager, exported = traced
    e, o = eager[image], exported[image]
    # RegNet's random scores are bimodal: a scale giving detections on A fills B's 100 slots
    assert 10 <= len(e) <= (100 if name == REGNET else 99), f"{name}: the init gives {len(e)} eager detections"
    found, matched = match_detections(e, o)
    assert len(found) >= FOUND_MIN * len(e), f"{name} image {image}: {len(found)}/{len(e)} found"
    found_back, _ = match_detections(o, e)
    assert len(found_back) >= FOUND_MIN * len(o), f"{name} image {image}: {len(found_back)}/{len(o)} found back"
    if e.has("pred_masks"):
        torch.testing.assert_close(o.pred_masks[matched], e.pred_masks[found], rtol=0, atol=1e-3)


def test_graph_runs_the_model_parts(traced):
    """The traced graph holds what makes these models different: deformable convolutions in
    res3-res5 (13 blocks), RoIAlign over 4 levels for each of 3 cascade stages plus the masks."""
    name, ts_model, *_ = traced
    kinds = [node.kind() for node in all_nodes(ts_model.inlined_graph)]
    others = sorted({k for k in kinds if k.split("::")[0] not in ("aten", "prim")})
    expected = {
        CASCADE: ["torchvision::nms", "torchvision::roi_align"],
        DCONV: ["torchvision::deform_conv2d", "torchvision::nms", "torchvision::roi_align"],
        FCOS: ["torchvision::nms"],
        REGNET: ["torchvision::nms", "torchvision::roi_align"],
    }[name]
    assert others == expected
    if name == DCONV:
        assert kinds.count("torchvision::deform_conv2d") == 4 + 6 + 3
    if name == CASCADE:
        assert kinds.count("torchvision::roi_align") == 4 * (3 + 1)


def test_caffe2_tracer_refuses_deformable_convolution():
    cfg = dconv_cfg()
    model = build_on_meta(cfg).eval()
    inputs = [{"image": torch.zeros(3, 64, 64)}]
    with pytest.raises(ExportError, match=r"DEFORM_ON_PER_STAGE=\[False, True, True, True\].*no Caffe2 operator"):
        Caffe2Tracer(cfg, model, inputs)
    # a deformable convolution the config does not announce (e.g. in a user backbone)
    cfg.MODEL.RESNETS.DEFORM_ON_PER_STAGE = [False, False, False, False]
    with pytest.raises(
        ExportError, match=r"model\.backbone\.bottom_up\.res3\.0\.conv2 is a DeformConv \(13 deformable .*no Caffe2"
    ):
        Caffe2Tracer(cfg, model, inputs)
