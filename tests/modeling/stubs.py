"""Small stand-ins for model parts, so meta-architecture tests check the wiring on hand-made data."""

from __future__ import annotations

import json
import os
from typing import Dict, List

import torch
from torch import nn

from detectron2_export.config import get_cfg
from detectron2_export.modeling import Backbone
from detectron2_export.structures import Boxes, Instances

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def zoo_cfg(relpath: str):
    """The project's copy of a model-zoo config, on CPU."""
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO_ROOT, "configs", relpath))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def upstream_keys(name: str, prefix: str) -> Dict[str, List[int]]:
    """Keys (without ``prefix``) and shapes upstream detectron2's ``name`` model has under ``prefix``."""
    with open(os.path.join(REPO_ROOT, "tests", "data", "model_keys", f"{name}.keys.json")) as f:
        keys = json.load(f)
    return {k[len(prefix) :]: v for k, v in keys.items() if k.startswith(prefix)}


def shapes_of(module: nn.Module) -> Dict[str, List[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


class IdentityBackbone(Backbone):
    """Returns its input as feature "img" (stride 1), and asks for padding to ``size_divisibility``."""

    def __init__(self, size_divisibility: int = 32, channels: int = 3):
        super().__init__()
        self._size_divisibility = size_divisibility
        self._out_features = ["img"]
        self._out_feature_channels = {"img": channels}
        self._out_feature_strides = {"img": 1}
        self.seen: List[torch.Tensor] = []

    @property
    def size_divisibility(self) -> int:
        return self._size_divisibility

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        self.seen.append(x)
        return {"img": x}


class FixedProposals(nn.Module):
    """A proposal generator returning the given boxes for every image."""

    def __init__(self, boxes: torch.Tensor):
        super().__init__()
        self.boxes = boxes

    def forward(self, images, features, gt_instances=None):
        proposals = []
        for image_size in images.image_sizes:
            inst = Instances(image_size)
            inst.proposal_boxes = Boxes(self.boxes.clone())
            inst.objectness_logits = torch.arange(len(self.boxes), 0, -1).float()
            proposals.append(inst)
        return proposals, {}


class EchoROIHeads(nn.Module):
    """ROI heads that turn each proposal into a detection of class 1 with score 0.9.

    It records what it was called with, so tests can check the meta-architecture's wiring.
    """

    def __init__(self):
        super().__init__()
        self.calls: List[str] = []

    def forward(self, images, features, proposals, targets=None):
        self.calls.append("forward")
        results = []
        for p in proposals:
            inst = Instances(p.image_size)
            inst.pred_boxes = Boxes(p.proposal_boxes.tensor.clone())
            inst.scores = torch.full((len(p),), 0.9)
            inst.pred_classes = torch.ones(len(p), dtype=torch.int64)
            results.append(inst)
        return results, {}

    def forward_with_given_boxes(self, features, instances):
        self.calls.append("forward_with_given_boxes")
        for inst in instances:
            inst.pred_masks = torch.ones(len(inst), 1, 4, 4)
        return instances
