"""Shared by the model-level standard-ONNX tests: the bundled shapes model and its inputs."""

from __future__ import annotations

import os

import pytest
import torch

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.config import get_cfg
from detectron2_export.data import DatasetCatalog
from detectron2_export.data.dataset_mapper import DatasetMapper
from detectron2_export.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SHAPES_CONFIG = os.path.join(REPO, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml")
SHAPES_WEIGHTS = os.path.join(REPO, "models", "mask_rcnn_R_18_FPN_shapes.pkl")


@pytest.fixture(scope="session")
def shapes_model():
    """(cfg, eval-mode model) of the bundled shapes Mask R-CNN, on CPU."""
    cfg = get_cfg()
    cfg.merge_from_file(SHAPES_CONFIG)
    cfg.MODEL.WEIGHTS = SHAPES_WEIGHTS
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return cfg, model


@pytest.fixture(scope="session")
def shapes_inputs(shapes_model):
    """Four shapes_val images as the test loader gives them: four sizes, with "height"/"width"."""
    cfg, _ = shapes_model
    dataset = DatasetCatalog.get("shapes_val")
    mapper = DatasetMapper(cfg, is_train=False)
    inputs = [mapper(dataset[i]) for i in range(4)]
    return [{"image": x["image"], "height": x["height"], "width": x["width"]} for x in inputs]


@pytest.fixture(scope="session")
def shapes_onnx(shapes_model, shapes_inputs):
    """The shapes model exported with ``export_onnx`` (traced on the first image)."""
    from detectron2_export.export import export_onnx

    cfg, model = shapes_model
    with torch.no_grad():
        return export_onnx(cfg, model, shapes_inputs[:1])
