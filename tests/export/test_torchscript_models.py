"""Shared by the TorchScript export tests: R50-FPN models with fixed random weights that detect
something, small test images, an Instances comparison and a "fresh process" runner.

Random R50 weights are useless as is: with FrozenBN (identity statistics) the activations grow by
orders of magnitude through the 16 residual blocks, every class score saturates at 1.0 and the
boxes degenerate. Scaling each bottleneck's last norm (``conv3.norm``) by 0.1 keeps the features
O(10); then the classifier weights are scaled so that a few dozen scores pass the 0.05 test
threshold on the test images (checked below, so a change of init elsewhere shows up here).
"""

import os
import subprocess
import sys
from functools import lru_cache
from typing import Iterator

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from detectron2_export import model_zoo
from detectron2_export.modeling import GeneralizedRCNN, build_model
from detectron2_export.structures import Boxes, Instances, ROIMasks

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_VAL = os.path.join(REPO_ROOT, "datasets", "shapes", "val")
MASK_RCNN = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"
RETINANET = "COCO-Detection/retinanet_R_50_FPN_3x.yaml"
RESIDUAL_SCALE = 0.1
CLASSIFIER_SCALE = {MASK_RCNN: 0.3, RETINANET: 12.0}


def shapes_image(index: int, height: int | None = None) -> torch.Tensor:
    """A bundled shapes validation image as a (3, H, W) float BGR tensor, optionally resized."""
    rgb = np.asarray(Image.open(os.path.join(SHAPES_VAL, f"{index:05d}.jpg")).convert("RGB"))
    image = torch.as_tensor(rgb[:, :, ::-1].copy()).permute(2, 0, 1).float()
    if height is None:
        return image
    width = round(image.shape[-1] * height / image.shape[-2])
    return nn.functional.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False)[0]


@lru_cache(maxsize=None)
def sample_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Two images of different sizes and aspect ratios (128x96 and 176x210)."""
    return shapes_image(0, 128), shapes_image(1, 176)


def detection_model(config: str) -> nn.Module:
    """The model of a model-zoo config with fixed random weights that give detections (CPU, eval)."""
    cfg = model_zoo.get_config(config)
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    with torch.no_grad():
        for name, module in model.backbone.named_modules():
            if name.endswith("conv3.norm"):
                module.weight.mul_(RESIDUAL_SCALE)
        if isinstance(model, GeneralizedRCNN):
            classifier = model.roi_heads.box_predictor.cls_score
        else:
            classifier = model.head.cls_score
        classifier.weight.mul_(CLASSIFIER_SCALE[config])
    return model


def rcnn_inference(model: nn.Module, inputs: list[dict]) -> list[dict]:
    """export_model.py's tracing function for GeneralizedRCNN: raw (unresized) instances, RoI masks."""
    return [{"instances": model.inference(inputs, do_postprocess=False)[0]}]


def assert_instances_close(actual, expected: Instances, atol: float = 1e-3) -> None:
    """Same image size and fields; float fields within ``atol``, integer fields equal."""
    assert tuple(int(x) for x in actual.image_size) == tuple(int(x) for x in expected.image_size)
    expected_fields = expected.get_fields()
    actual_fields = actual.get_fields() if isinstance(actual, Instances) else {
        name: getattr(actual, name) for name in expected_fields
    }
    assert set(actual_fields) == set(expected_fields)
    for name, exp in expected_fields.items():
        act = actual_fields[name]
        if isinstance(exp, (Boxes, ROIMasks)):
            exp, act = exp.tensor, act.tensor
        assert act.shape == exp.shape, name
        if exp.dtype.is_floating_point:
            torch.testing.assert_close(act, exp, rtol=0, atol=atol, msg=name)
        else:
            assert torch.equal(act, exp), name


def run_in_fresh_python(code: str, *args: str, timeout: float = 300) -> None:
    """Run ``code`` in a new interpreter with ``sys.argv[1:] = args``, from a directory where the
    project is not importable by accident; fail with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd="/", env=env
    )
    assert proc.returncode == 0, f"fresh process failed:\n{proc.stdout}\n{proc.stderr}"


def all_nodes(graph) -> Iterator[torch._C.Node]:
    """All nodes of a TorchScript graph (or block), nested blocks included."""
    for node in graph.nodes():
        yield node
        for block in node.blocks():
            yield from all_nodes(block)


@pytest.mark.slow
@pytest.mark.parametrize("config", [MASK_RCNN, RETINANET])
def test_fixed_random_weights_give_detections(config):
    model = detection_model(config)
    for image in sample_images():
        with torch.no_grad():
            instances = model([{"image": image}])[0]["instances"]
        assert 5 <= len(instances) <= 100
        assert instances.scores.min() >= 0.05 and instances.scores.max() < 0.9
        assert instances.pred_boxes.area().min() > 1.0
