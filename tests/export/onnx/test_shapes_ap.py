"""COCO AP of the standard-ONNX export of the bundled shapes Mask R-CNN on onnxruntime (issue 12):
within 0.05 of eager, whose AP on shapes_val equals upstream detectron2's (asserted in
tests/export/test_caffe2_shapes_ap.py; the numbers are upstream's, ../shared/models/README.md)."""

from __future__ import annotations

import pytest

from detectron2_export.data import build_detection_test_loader
from detectron2_export.evaluation import COCOEvaluator, inference_on_dataset
from detectron2_export.export import OnnxRuntimeModel

from ..test_caffe2_shapes_ap import UPSTREAM

pytestmark = pytest.mark.slow

ONNX_TOL = 0.05


def test_onnxruntime_ap_close_to_eager(shapes_model, shapes_onnx):
    cfg, _ = shapes_model
    cfg = cfg.clone()
    cfg.DATALOADER.NUM_WORKERS = 0
    loader = build_detection_test_loader(cfg, "shapes_val")
    results = inference_on_dataset(OnnxRuntimeModel(shapes_onnx), loader, COCOEvaluator("shapes_val"), progress=False)
    for task in ("bbox", "segm"):
        for metric in ("AP", "AP50", "AP75"):
            got, want = results[task][metric], UPSTREAM[task][metric]
            assert abs(got - want) <= ONNX_TOL, f"onnxruntime {task} {metric}={got:.3f}, eager/upstream {want}"
