"""The bundled shapes Mask R-CNN exported with Caffe2Tracer, and its sample input, for model-level tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .cpp_runner import REPO_ROOT

CONFIG = REPO_ROOT / "configs" / "shapes" / "mask_rcnn_R_18_FPN_shapes.yaml"
WEIGHTS = REPO_ROOT / "models" / "mask_rcnn_R_18_FPN_shapes.pkl"


@dataclass
class ExportedModel:
    directory: Path  # model.pb, model_init.pb
    data: torch.Tensor  # the sample's (1, 3, H, W) input as Caffe2Model feeds it
    im_info: torch.Tensor
    image_file: str  # the sample's image on disk
    min_size: int  # INPUT.MIN_SIZE_TEST / MAX_SIZE_TEST
    max_size: int


def export_shapes_mask_rcnn(out_dir: Path) -> ExportedModel:
    """Export with MODEL.DEVICE cpu; the sample is the first image of ``shapes_val``."""
    from detectron2_export.checkpoint import DetectionCheckpointer
    from detectron2_export.config import get_cfg
    from detectron2_export.data import build_detection_test_loader
    from detectron2_export.export import Caffe2Tracer, add_export_config
    from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
    from detectron2_export.modeling import build_model

    cfg = get_cfg()
    cfg.merge_from_file(str(CONFIG))
    cfg.merge_from_list(["MODEL.WEIGHTS", str(WEIGHTS), "MODEL.DEVICE", "cpu"])
    cfg = add_export_config(cfg)
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    inputs = next(iter(build_detection_test_loader(cfg, "shapes_val")))
    c2_model = Caffe2Tracer(cfg, model, inputs).export_caffe2()
    c2_model.save_protobuf(str(out_dir))
    data, im_info = convert_batched_inputs_to_c2_format(inputs, model.backbone.size_divisibility, "cpu")
    return ExportedModel(
        out_dir, data, im_info, inputs[0]["file_name"], cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST
    )
