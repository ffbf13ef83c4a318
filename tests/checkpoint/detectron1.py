"""Detectron1 / Caffe2 blobs for a detectron2 state dict: the inverse of the name conversion, by hand.

Written from Detectron1's blob naming (``conv1_w``, ``res_conv1_bn_s``, ``res2_0_branch2a_w``,
``fpn_inner_res5_2_sum_w``, ``conv_rpn_fpn2_w``, ``fc6_w``, ``_[mask]_fcn1_w``, ``conv_fcn1_w``,
``kps_score_lowres_w``...) and its class layout (background first, with background rows in the
box and mask predictors), independently of the rules in ``c2_model_loading``.
"""

from __future__ import annotations

import re

import torch

_PARAM = {"weight": "w", "bias": "b"}
_NORM = {"weight": "s", "bias": "b", "running_mean": "rm", "running_var": "riv"}
_BRANCH = {"shortcut": "branch1", "conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c"}


def detectron1_name(key: str, last_block: dict[int, int]) -> str:
    """The Caffe2 blob name of a detectron2 state-dict key (``last_block``: stage -> its last index)."""
    key = re.sub(r"^(backbone\.bottom_up\.|backbone\.|roi_heads\.(?=res5))", "", key)
    fpn = "_fpn2" if last_block else ""  # the FPN RPN head is named after its first level
    rules = (
        (r"stem\.conv1\.weight", lambda m: "conv1_w"),
        (r"stem\.conv1\.norm\.(\w+)", lambda m: f"res_conv1_bn_{_NORM[m[1]]}"),
        (r"res(\d)\.(\d+)\.(\w+)\.weight", lambda m: f"res{m[1]}_{m[2]}_{_BRANCH[m[3]]}_w"),
        (r"res(\d)\.(\d+)\.(\w+)\.norm\.(\w+)", lambda m: f"res{m[1]}_{m[2]}_{_BRANCH[m[3]]}_bn_{_NORM[m[4]]}"),
        (r"fpn_lateral5\.(\w+)", lambda m: f"fpn_inner_res5_{last_block[5]}_sum_{_PARAM[m[1]]}"),
        (r"fpn_lateral(\d)\.(\w+)", lambda m: f"fpn_inner_res{m[1]}_{last_block[int(m[1])]}_sum_lateral_{_PARAM[m[2]]}"),
        (r"fpn_output(\d)\.(\w+)", lambda m: f"fpn_res{m[1]}_{last_block[int(m[1])]}_sum_{_PARAM[m[2]]}"),
        (r"proposal_generator\.rpn_head\.conv\.(\w+)", lambda m: f"conv_rpn{fpn}_{_PARAM[m[1]]}"),
        (r"proposal_generator\.rpn_head\.anchor_deltas\.(\w+)", lambda m: f"rpn_bbox_pred{fpn}_{_PARAM[m[1]]}"),
        (r"proposal_generator\.rpn_head\.objectness_logits\.(\w+)", lambda m: f"rpn_cls_logits{fpn}_{_PARAM[m[1]]}"),
        (r"roi_heads\.box_head\.fc1\.(\w+)", lambda m: f"fc6_{_PARAM[m[1]]}"),
        (r"roi_heads\.box_head\.fc2\.(\w+)", lambda m: f"fc7_{_PARAM[m[1]]}"),
        (r"roi_heads\.box_predictor\.(cls_score|bbox_pred)\.(\w+)", lambda m: f"{m[1]}_{_PARAM[m[2]]}"),
        (r"roi_heads\.mask_head\.mask_fcn(\d)\.(\w+)", lambda m: f"_[mask]_fcn{m[1]}_{_PARAM[m[2]]}"),
        (r"roi_heads\.mask_head\.deconv\.(\w+)", lambda m: f"conv5_mask_{_PARAM[m[1]]}"),
        (r"roi_heads\.mask_head\.predictor\.(\w+)", lambda m: f"mask_fcn_logits_{_PARAM[m[1]]}"),
        (r"roi_heads\.keypoint_head\.conv_fcn(\d)\.(\w+)", lambda m: f"conv_fcn{m[1]}_{_PARAM[m[2]]}"),
        (r"roi_heads\.keypoint_head\.score_lowres\.(\w+)", lambda m: f"kps_score_lowres_{_PARAM[m[1]]}"),
    )
    for pattern, name in rules:
        m = re.fullmatch(pattern, key)
        if m:
            return name(m)
    raise KeyError(f"no Detectron1 name for {key}")


def detectron1_value(key: str, value: torch.Tensor) -> torch.Tensor:
    """Detectron1's layout of a predictor: background first (classifier), background rows added
    (4 box deltas, 1 mask); the added rows hold -1000 so that loading them by mistake shows."""
    if key.endswith("cls_score.weight") or key.endswith("cls_score.bias"):
        return torch.cat([value[-1:], value[:-1]])
    if "box_predictor.bbox_pred." in key:
        return torch.cat([torch.full((4,) + value.shape[1:], -1000.0, dtype=value.dtype), value])
    if "mask_head.predictor." in key:
        return torch.cat([torch.full((1,) + value.shape[1:], -1000.0, dtype=value.dtype), value])
    return value


def detectron1_blobs(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The Detectron1 blob dict holding ``state`` (pixel_mean/std are not blobs in Detectron1)."""
    stages = [re.search(r"\bres(\d)\.(\d+)\.", k) for k in state]
    last_block: dict[int, int] = {}
    if any(k.startswith("backbone.fpn_") for k in state):
        for m in filter(None, stages):
            last_block[int(m[1])] = max(last_block.get(int(m[1]), 0), int(m[2]))
    return {
        detectron1_name(k, last_block): detectron1_value(k, v)
        for k, v in state.items() if k not in ("pixel_mean", "pixel_std")
    }
