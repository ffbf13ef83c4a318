"""Cascade R-CNN ROI heads (detectron2.modeling.roi_heads.cascade_rcnn, v0.6), inference only.

Stage k pools the boxes of stage k-1 (the RPN proposals for k = 0) and runs its own box head and
predictor, whose class-agnostic deltas are decoded with that stage's Box2BoxTransform weights
(``MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS``). The detections are the last stage's boxes
with the class probabilities averaged over all stages, then the usual score threshold, per-class
NMS and top-k; masks and keypoints are predicted on those final boxes.
"""

from typing import Dict, List, Optional

import torch
from torch import nn

from detectron2_export.config import configurable
from detectron2_export.errors import ConfigError
from detectron2_export.structures import Boxes, Instances

from ..box_regression import Box2BoxTransform
from ..poolers import ROIPooler
from .box_head import build_box_head
from .fast_rcnn import FastRCNNOutputLayers, fast_rcnn_inference
from .roi_heads import ROI_HEADS_REGISTRY, StandardROIHeads, _box_pooler

__all__ = ["CascadeROIHeads"]


@ROI_HEADS_REGISTRY.register()
class CascadeROIHeads(StandardROIHeads):
    """The ROI heads of "Cascade R-CNN: Delving into High Quality Object Detection".

    ``box_head`` and ``box_predictor`` are ``nn.ModuleList``s with one entry per stage (state_dict
    keys ``roi_heads.box_head.<k>.*`` and ``roi_heads.box_predictor.<k>.*``, as detectron2).
    """

    @configurable
    def __init__(
        self,
        *,
        box_in_features: List[str],
        box_pooler: ROIPooler,
        box_heads: List[nn.Module],
        box_predictors: List[nn.Module],
        proposal_matchers: Optional[List[object]] = None,
        **kwargs,
    ):
        """
        Args:
            box_in_features, box_pooler: as in :class:`StandardROIHeads`; shared by all stages.
            box_heads: the box head of each stage.
            box_predictors: the box predictor of each stage (FastRCNNOutputLayers with that
                stage's Box2BoxTransform; class-agnostic regression).
            proposal_matchers: training only (one matcher per stage); stored, unused.
            kwargs: passed to :class:`StandardROIHeads`.
        """
        if "proposal_matcher" in kwargs:
            raise TypeError(
                "CascadeROIHeads: got proposal_matcher=, expected proposal_matchers= (one per stage)"
            )
        num_stages = len(box_heads)
        if proposal_matchers is None:
            proposal_matchers = [None] * num_stages
        if len(box_predictors) != num_stages or len(proposal_matchers) != num_stages:
            raise ValueError(
                f"CascadeROIHeads: {num_stages} box_heads, {len(box_predictors)} box_predictors and "
                f"{len(proposal_matchers)} proposal_matchers, expected one of each per stage"
            )
        # the first stage matches the RPN proposals, as the base class would
        kwargs["proposal_matcher"] = proposal_matchers[0]
        super().__init__(
            box_in_features=box_in_features,
            box_pooler=box_pooler,
            box_head=nn.ModuleList(box_heads),
            box_predictor=nn.ModuleList(box_predictors),
            **kwargs,
        )
        self.num_cascade_stages = num_stages
        self.proposal_matchers = proposal_matchers

    @classmethod
    def _init_box_head(cls, cfg, input_shape):
        cascade_bbox_reg_weights = cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS
        cascade_ious = cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS
        if len(cascade_bbox_reg_weights) != len(cascade_ious):
            raise ConfigError(
                f"CascadeROIHeads: MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS has "
                f"{len(cascade_bbox_reg_weights)} entries, expected one per IOUS entry ({len(cascade_ious)})"
            )
        if not cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG:
            raise ConfigError(
                "CascadeROIHeads: MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG=False, expected True "
                "(the cascade regresses one box per region)"
            )
        if cascade_ious[0] != cfg.MODEL.ROI_HEADS.IOU_THRESHOLDS[0]:
            raise ConfigError(
                f"CascadeROIHeads: MODEL.ROI_BOX_CASCADE_HEAD.IOUS[0]={cascade_ious[0]}, expected "
                f"MODEL.ROI_HEADS.IOU_THRESHOLDS[0]={cfg.MODEL.ROI_HEADS.IOU_THRESHOLDS[0]}"
            )
        in_features, box_pooler, pooled_shape = _box_pooler(cfg, input_shape)
        box_heads, box_predictors = [], []
        for bbox_reg_weights in cascade_bbox_reg_weights:
            box_head = build_box_head(cfg, pooled_shape)
            box_heads.append(box_head)
            box_predictors.append(
                FastRCNNOutputLayers(
                    cfg, box_head.output_shape, box2box_transform=Box2BoxTransform(weights=bbox_reg_weights)
                )
            )
        return {
            "box_in_features": in_features,
            "box_pooler": box_pooler,
            "box_heads": box_heads,
            "box_predictors": box_predictors,
            # the IoU thresholds of IOUS only label proposals in training
            "proposal_matchers": None,
        }

    def _forward_box(self, features: Dict[str, torch.Tensor], proposals: List[Instances]) -> List[Instances]:
        """Run the stages in turn, then post-process the last boxes with the averaged scores."""
        features = [features[f] for f in self.box_in_features]
        head_outputs = []  # (predictor, predictions, proposals) of every stage
        prev_pred_boxes = None
        image_sizes = [x.image_size for x in proposals]
        for k in range(self.num_cascade_stages):
            if k > 0:
                proposals = self._create_proposals_from_boxes(prev_pred_boxes, image_sizes)
            predictions = self._run_stage(features, proposals, k)
            prev_pred_boxes = self.box_predictor[k].predict_boxes(predictions, proposals)
            head_outputs.append((self.box_predictor[k], predictions, proposals))

        # per stage, per image: (Ri, K+1) probabilities; averaged over the stages
        scores_per_stage = [h[0].predict_probs(h[1], h[2]) for h in head_outputs]
        scores = [
            sum(list(scores_per_image)) * (1.0 / self.num_cascade_stages)
            for scores_per_image in zip(*scores_per_stage)
        ]
        predictor, predictions, proposals = head_outputs[-1]
        boxes = predictor.predict_boxes(predictions, proposals)
        pred_instances, _ = fast_rcnn_inference(
            boxes,
            scores,
            image_sizes,
            predictor.test_score_thresh,
            predictor.test_nms_thresh,
            predictor.test_topk_per_image,
        )
        return pred_instances

    def _run_stage(self, features: List[torch.Tensor], proposals: List[Instances], stage: int):
        """Pool ``proposals`` and run the box head and predictor of ``stage``: (scores, deltas)."""
        box_features = self.box_pooler(features, [x.proposal_boxes for x in proposals])
        box_features = self.box_head[stage](box_features)
        return self.box_predictor[stage](box_features)

    def _create_proposals_from_boxes(self, boxes: List[torch.Tensor], image_sizes) -> List[Instances]:
        """The previous stage's boxes, clipped to the image, as the next stage's proposals.

        Empty boxes are kept at inference: every stage must score the same regions so that the
        scores can be averaged.
        """
        proposals = []
        for boxes_per_image, image_size in zip(boxes, image_sizes):
            boxes_per_image = Boxes(boxes_per_image.detach())
            boxes_per_image.clip(image_size)
            prop = Instances(image_size)
            prop.proposal_boxes = boxes_per_image
            proposals.append(prop)
        return proposals
