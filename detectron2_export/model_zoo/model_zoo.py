"""detectron2's ``model_zoo``: model-zoo names -> the bundled config files and trained weights.

Names are config paths relative to ``configs/`` (e.g.
``"COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"``). The configs live in the project's
``configs/`` directory (not inside the package), so this works from a source checkout or an
editable install.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from ..checkpoint import DetectionCheckpointer
from ..config import CfgNode, get_cfg

__all__ = ["get_config_file", "get_checkpoint_url", "get_config", "get", "CONFIGS_DIR"]

CONFIGS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "configs")

_S3_PREFIX = "https://dl.fbaipublicfiles.com/detectron2/"

# Trained model-zoo weights ("model_id/model_final_<hash>.pkl") of the configs shipped in configs/.
_CONFIG_PATH_TO_URL_SUFFIX = {
    "COCO-Detection/faster_rcnn_R_50_DC5_3x": "137849425/model_final_68d202.pkl",
    "COCO-Detection/faster_rcnn_R_50_FPN_3x": "137849458/model_final_280758.pkl",
    "COCO-Detection/retinanet_R_50_FPN_3x": "190397829/model_final_5bd44e.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_C4_3x": "137849525/model_final_4ce675.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x": "137849600/model_final_f10217.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_R_101_FPN_3x": "138205316/model_final_a3ec72.pkl",
    "COCO-InstanceSegmentation/mask_rcnn_X_101_32x8d_FPN_3x": "139653917/model_final_2d9806.pkl",
    "COCO-Keypoints/keypoint_rcnn_R_50_FPN_3x": "137849621/model_final_a6e10b.pkl",
    "COCO-PanopticSegmentation/panoptic_fpn_R_50_3x": "139514569/model_final_c10459.pkl",
}


def get_config_file(config_path: str) -> str:
    """The real path of a bundled config file; RuntimeError (as upstream) if it is not bundled."""
    cfg_file = os.path.join(CONFIGS_DIR, config_path)
    if not os.path.isfile(cfg_file):
        raise RuntimeError(f"{config_path} not available in Model Zoo! (looked for {cfg_file})")
    return cfg_file


def get_checkpoint_url(config_path: str) -> str:
    """The URL of the model-zoo weights trained with ``config_path``."""
    name = config_path.replace(".yaml", "")
    if name not in _CONFIG_PATH_TO_URL_SUFFIX:
        raise RuntimeError(f"Pretrained model for {config_path} is not available! "
                           f"Known: {sorted(_CONFIG_PATH_TO_URL_SUFFIX)}")
    return f"{_S3_PREFIX}{name}/{_CONFIG_PATH_TO_URL_SUFFIX[name]}"


def get_config(config_path: str, trained: bool = False) -> CfgNode:
    """``get_cfg()`` merged with the bundled file; ``trained`` points MODEL.WEIGHTS at the zoo weights."""
    cfg = get_cfg()
    cfg.merge_from_file(get_config_file(config_path))
    if trained:
        cfg.MODEL.WEIGHTS = get_checkpoint_url(config_path)
    return cfg


def get(config_path: str, trained: bool = False, device: str | None = None) -> Any:
    """Build the model of a bundled config and load its weights (in training mode, as upstream)."""
    from ..modeling import build_model

    cfg = get_config(config_path, trained)
    if device is None and not torch.cuda.is_available():
        device = "cpu"
    if device is not None:
        cfg.MODEL.DEVICE = device
    model = build_model(cfg)
    DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    return model
