"""Scripting export (SPEC 2.8, 7.2, 7.5 "scripting"): Mask R-CNN and RetinaNet R50-FPN scripted with
scripting_with_instances run a batch of two images of different sizes like eager, directly (as
upstream's tests) and through a dict-returning adapter (as export_model.py) reloaded in a fresh
Python process that imports only torch and torchvision."""

import io
from typing import Dict, List

import pytest
import torch
from torch import Tensor, nn

from detectron2_export.export import dump_torchscript_IR, scripting_with_instances
from detectron2_export.export.deploy import SCRIPTING_FIELDS
from detectron2_export.modeling.postprocessing import detector_postprocess
from detectron2_export.structures import Boxes, Instances

from .test_torchscript_models import (
    MASK_RCNN,
    RETINANET,
    assert_instances_close,
    detection_model,
    run_in_fresh_python,
    sample_images,
)

pytestmark = pytest.mark.slow

RCNN_FIELDS = SCRIPTING_FIELDS  # export_model.py's list: every field of the supported models
RETINANET_FIELDS = {"pred_boxes": Boxes, "scores": Tensor, "pred_classes": Tensor}

FRESH_PROCESS_RUN = """
import sys
import torch, torchvision
model_path, images_path, outputs_path = sys.argv[1:]
model = torch.jit.load(model_path)
images = torch.load(images_path)
with torch.no_grad():
    outputs = model([{"image": image} for image in images])
torch.save(outputs, outputs_path)
leaked = sorted(m for m in sys.modules if m.startswith("detectron2_export"))
assert not leaked, leaked
"""


class RCNNAdapter(nn.Module):
    """export_model.py's ScriptableAdapter for GeneralizedRCNN, taking a list (any batch size)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, inputs: List[Dict[str, Tensor]]) -> List[Dict[str, Tensor]]:
        return [i.get_fields() for i in self.model.inference(inputs, do_postprocess=False)]


class DenseAdapter(RCNNAdapter):
    """The same for models called directly (RetinaNet); scripted, they return raw instances."""

    def forward(self, inputs: List[Dict[str, Tensor]]) -> List[Dict[str, Tensor]]:
        return [i.get_fields() for i in self.model(inputs)]


def _reload(scripted: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer)


@pytest.fixture(scope="module")
def mask_rcnn():
    return detection_model(MASK_RCNN)


@pytest.fixture(scope="module")
def retinanet():
    return detection_model(RETINANET)


def _batch() -> list[dict]:
    return [{"image": image} for image in sample_images()]


@pytest.fixture(scope="module")
def scripted_mask_rcnn(mask_rcnn):
    return scripting_with_instances(mask_rcnn, RCNN_FIELDS)


def test_mask_rcnn_scripted_and_reloaded_matches_eager_on_a_batch(mask_rcnn, scripted_mask_rcnn):
    scripted = _reload(scripted_mask_rcnn)
    with torch.no_grad():
        expected = mask_rcnn.inference(_batch(), do_postprocess=False)
        actual = scripted.inference(_batch(), do_postprocess=False)
    assert len(actual) == 2
    for a, e in zip(actual, expected):
        assert len(e) > 0
        assert_instances_close(a, e, atol=1e-4)


def test_dump_ir_of_scripted_model(scripted_mask_rcnn, tmp_path):
    dump_torchscript_IR(scripted_mask_rcnn, str(tmp_path))
    for name in ["model_ts_code.txt", "model_ts_IR.txt", "model_ts_IR_inlined.txt", "model.txt"]:
        assert (tmp_path / name).stat().st_size > 0, name
    code = (tmp_path / "model_ts_code.txt").read_text()
    assert "Code for root model, type=GeneralizedRCNN:" in code
    assert "Code for .roi_heads.box_predictor, type=FastRCNNOutputLayers:" in code
    assert "ScriptedInstances" in code


def test_retinanet_scripted_matches_eager_after_postprocess(retinanet):
    scripted = scripting_with_instances(retinanet, RETINANET_FIELDS)
    with torch.no_grad():
        expected = retinanet(_batch())
        raw = scripted(_batch())
    for image, r, e in zip(sample_images(), raw, expected):
        fields = {name: getattr(r, name) for name in RETINANET_FIELDS}
        fields["pred_boxes"] = Boxes(fields["pred_boxes"].tensor)
        actual = detector_postprocess(Instances(tuple(image.shape[1:]), **fields), *image.shape[1:])
        assert len(e["instances"]) > 0
        assert_instances_close(actual, e["instances"], atol=1e-4)


@pytest.mark.parametrize("config", [MASK_RCNN, RETINANET], ids=["mask_rcnn", "retinanet"])
def test_adapter_reloaded_in_fresh_process_matches_eager(config, mask_rcnn, retinanet, tmp_path):
    model = mask_rcnn if config == MASK_RCNN else retinanet
    adapter = RCNNAdapter(model) if config == MASK_RCNN else DenseAdapter(model)
    fields = RCNN_FIELDS if config == MASK_RCNN else RETINANET_FIELDS
    scripted = scripting_with_instances(adapter, fields)
    scripted.save(str(tmp_path / "model.ts"))
    images = list(sample_images())
    torch.save(images, tmp_path / "images.pt")
    paths = [str(tmp_path / name) for name in ("model.ts", "images.pt", "out.pt")]
    run_in_fresh_python(FRESH_PROCESS_RUN, *paths)
    outputs = torch.load(tmp_path / "out.pt")

    with torch.no_grad():
        if config == MASK_RCNN:
            expected = mask_rcnn.inference(_batch(), do_postprocess=False)
        else:
            expected = [x["instances"] for x in retinanet(_batch())]
    assert len(outputs) == 2
    for image, out, e in zip(images, outputs, expected):
        out = dict(out, pred_boxes=Boxes(out["pred_boxes"]))
        actual = Instances(tuple(image.shape[1:]), **out)
        if config == RETINANET:
            actual = detector_postprocess(actual, *image.shape[1:])
        assert len(e) > 0
        assert_instances_close(actual, e, atol=1e-4)
