"""Model-zoo configs and the backbone output shapes their heads are built on, for key tests.

The expected state_dict keys and shapes come from upstream detectron2
(tests/data/model_keys/<config>.keys.json). Modules are built on the meta device: only shapes
matter, and the R50 heads (a 100352 x 1024 fc for DC5) would otherwise cost seconds and memory.
"""

import json
import os
from typing import Dict

import torch

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))

_FPN = {f"p{k}": ShapeSpec(channels=256, stride=2**k) for k in range(2, 7)}
_C4 = {"res4": ShapeSpec(channels=1024, stride=16)}
_DC5 = {"res5": ShapeSpec(channels=2048, stride=16)}

# config name -> (yaml under configs/, backbone output shapes)
ZOO = {
    "mask_rcnn_R_50_FPN_3x": ("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", _FPN),
    "mask_rcnn_R_50_C4_3x": ("COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x.yaml", _C4),
    "faster_rcnn_R_50_DC5_3x": ("COCO-Detection/faster_rcnn_R_50_DC5_3x.yaml", _DC5),
    "keypoint_rcnn_R_50_FPN_3x": ("COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x.yaml", _FPN),
    "panoptic_fpn_R_50_3x": ("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml", _FPN),
}


def zoo_cfg(name: str):
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", ZOO[name][0]))
    return cfg


def zoo_input_shape(name: str) -> Dict[str, ShapeSpec]:
    return dict(ZOO[name][1])


def expected_shapes(name: str, prefix: str) -> Dict[str, list]:
    """Upstream's state_dict entries under ``prefix`` (prefix stripped) -> shape."""
    path = os.path.join(REPO_ROOT, "tests", "data", "model_keys", f"{name}.keys.json")
    with open(path) as f:
        keys = json.load(f)
    return {k[len(prefix) :]: list(v) for k, v in keys.items() if k.startswith(prefix)}


def built_shapes(build, cfg, input_shape) -> Dict[str, list]:
    """state_dict key -> shape of ``build(cfg, input_shape)``, built on the meta device."""
    with torch.device("meta"):
        module = build(cfg, input_shape)
    return {k: list(v.shape) for k, v in module.state_dict().items()}
