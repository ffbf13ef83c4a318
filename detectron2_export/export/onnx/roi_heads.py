"""The second stage in the graph: box head on the proposals, detections, then the mask and keypoint
heads on the detections, for ``StandardROIHeads`` (FPN, DC5) and ``Res5ROIHeads`` (C4).

Regions of all images are stacked image by image: (N, P) proposals become N*P regions with their
image index, as ``convert_boxes_to_pooler_format`` does for a list.
"""

from __future__ import annotations

from typing import Dict, List

import torch
from torch import Tensor

from ...errors import ExportError
from .boxes import clip
from .detections import decode_predictions, fast_rcnn_detections
from .masks import select_class_masks
from .poolers import pool


def _regions(boxes: Tensor) -> tuple[Tensor, Tensor]:
    """(N, P, 4) boxes -> (N*P, 4) boxes and their (N*P,) int64 image indices."""
    n, p = boxes.shape[0], boxes.shape[1]
    images = torch.arange(n, device=boxes.device)[:, None].expand(-1, p).reshape(-1)
    return boxes.reshape(-1, 4), images


class RoIHeadsLowering:
    """Runs a model's ROI heads on batched tensors; one subclass per ROI-heads design."""

    def __init__(self, roi_heads) -> None:
        self.roi_heads = roi_heads

    @property
    def mask_on(self) -> bool:
        return bool(getattr(self.roi_heads, "mask_on", False))

    @property
    def keypoint_on(self) -> bool:
        return bool(getattr(self.roi_heads, "keypoint_on", False))

    def box_features(self, features: Dict[str, Tensor], boxes: Tensor, images: Tensor) -> Tensor:
        raise NotImplementedError

    def mask_logits(self, features: Dict[str, Tensor], boxes: Tensor, images: Tensor) -> Tensor:
        raise NotImplementedError

    def keypoint_heatmaps(self, features: Dict[str, Tensor], boxes: Tensor, images: Tensor) -> Tensor:
        raise ExportError(f"export_onnx: {type(self.roi_heads).__name__} has no keypoint head")

    def box_predictions(self, features: Dict[str, Tensor], proposals: Tensor, image_sizes: Tensor):
        """(predictor, (N*P, Kb*4) boxes, (N*P, K+1) probabilities) of the (N, P) proposals."""
        regions, images = _regions(proposals)
        predictor = self.roi_heads.box_predictor
        predictions = predictor(self.box_features(features, regions, images))
        return (predictor, *decode_predictions(predictor, predictions, regions))

    def detect(
        self, features: Dict[str, Tensor], proposals: Tensor, proposal_valid: Tensor, image_sizes: Tensor
    ) -> Dict[str, Tensor]:
        """Detections (N, D) and their per-detection head outputs, in network-input pixels."""
        predictor, boxes, probs = self.box_predictions(features, proposals, image_sizes)
        det_boxes, det_scores, det_classes = fast_rcnn_detections(predictor, boxes, probs, proposal_valid, image_sizes)
        outputs = {"pred_boxes": det_boxes, "scores": det_scores, "pred_classes": det_classes}
        n, d = det_boxes.shape[0], det_boxes.shape[1]
        boxes, images = _regions(det_boxes)
        if self.mask_on:
            masks = select_class_masks(self.mask_logits(features, boxes, images), det_classes.reshape(-1))
            outputs["pred_masks"] = masks.reshape(n, d, masks.shape[1], masks.shape[2])
        if self.keypoint_on:
            heatmaps = self.keypoint_heatmaps(features, boxes, images)
            outputs["pred_keypoint_heatmaps"] = heatmaps.reshape(n, d, *heatmaps.shape[1:])
            outputs["heatmap_boxes"] = det_boxes
        return outputs


class StandardRoIHeadsLowering(RoIHeadsLowering):
    """Separate poolers and heads for boxes, masks and keypoints (FPN and DC5 models)."""

    def _pool(self, pooler, in_features: List[str], features: Dict[str, Tensor], boxes: Tensor, images: Tensor) -> Tensor:
        if pooler is None:
            raise ExportError("export_onnx: a mask/keypoint head without a pooler (POOLER_TYPE '') is not lowered")
        return pool(pooler, [features[f] for f in in_features], boxes, images)

    def box_features(self, features, boxes, images):
        heads = self.roi_heads
        return heads.box_head(self._pool(heads.box_pooler, heads.box_in_features, features, boxes, images))

    def mask_logits(self, features, boxes, images):
        heads = self.roi_heads
        return heads.mask_head.layers(self._pool(heads.mask_pooler, heads.mask_in_features, features, boxes, images))

    def keypoint_heatmaps(self, features, boxes, images):
        heads = self.roi_heads
        pooled = self._pool(heads.keypoint_pooler, heads.keypoint_in_features, features, boxes, images)
        return heads.keypoint_head.layers(pooled)


class CascadeRoIHeadsLowering(StandardRoIHeadsLowering):
    """Cascade R-CNN: each stage pools the previous stage's boxes (clipped, empty ones kept) with its
    own box head and Box2BoxTransform; the last stage's boxes get the stage-averaged probabilities."""

    def box_predictions(self, features, proposals, image_sizes):
        heads = self.roi_heads
        in_features = [features[f] for f in heads.box_in_features]
        n, p = proposals.shape[0], proposals.shape[1]
        boxes, stage_probs = proposals, []
        for stage in range(heads.num_cascade_stages):
            if stage > 0:
                proposals = clip(boxes.reshape(n, p, 4), image_sizes)
            regions, images = _regions(proposals)
            predictor = heads.box_predictor[stage]
            predictions = predictor(heads.box_head[stage](pool(heads.box_pooler, in_features, regions, images)))
            boxes, probs = decode_predictions(predictor, predictions, regions)
            stage_probs.append(probs)
        return predictor, boxes, sum(stage_probs) * (1.0 / heads.num_cascade_stages)


class Res5RoIHeadsLowering(RoIHeadsLowering):
    """C4 models: boxes and masks share the pooler and the res5 stage."""

    def _res5(self, features, boxes, images) -> Tensor:
        heads = self.roi_heads
        return heads.res5(pool(heads.pooler, [features[f] for f in heads.in_features], boxes, images))

    def box_features(self, features, boxes, images):
        return self._res5(features, boxes, images).mean(dim=[2, 3])

    def mask_logits(self, features, boxes, images):
        return self.roi_heads.mask_head.layers(self._res5(features, boxes, images))


def roi_heads_lowering(roi_heads) -> RoIHeadsLowering:
    """The lowering for a model's ROI heads, found by its class (subclasses included)."""
    from ...modeling.roi_heads import CascadeROIHeads, Res5ROIHeads, StandardROIHeads

    if isinstance(roi_heads, CascadeROIHeads):
        return CascadeRoIHeadsLowering(roi_heads)
    if isinstance(roi_heads, StandardROIHeads):
        return StandardRoIHeadsLowering(roi_heads)
    if isinstance(roi_heads, Res5ROIHeads):
        return Res5RoIHeadsLowering(roi_heads)
    raise ExportError(
        f"export_onnx: ROI heads {type(roi_heads).__name__}, expected StandardROIHeads, CascadeROIHeads or "
        "Res5ROIHeads (or a subclass)"
    )
