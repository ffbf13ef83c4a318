"""Fast R-CNN box predictor and its inference (detectron2.modeling.roi_heads.fast_rcnn, v0.6).

Shapes: N images, R regions over the batch (Ri in image i), K foreground classes. Class scores
have K + 1 columns, the background being the **last** one.

``len`` is looked up in this module's globals on purpose (as in detectron2): the TorchScript
export temporarily replaces it so that instance counts stay symbolic while tracing.
"""

from typing import Dict, List, Tuple, Union

import torch
from torch import nn
from torch.nn import functional as F

from detectron2_export.config import configurable
from detectron2_export.layers import ShapeSpec, batched_nms, cat
from detectron2_export.structures import Boxes, Instances
from detectron2_export.utils.training_only import training_only_function

from ..box_regression import Box2BoxTransform

__all__ = ["fast_rcnn_inference", "fast_rcnn_inference_single_image", "FastRCNNOutputLayers"]

_log_classification_stats = training_only_function(__name__, "_log_classification_stats")


def fast_rcnn_inference(
    boxes: List[torch.Tensor],
    scores: List[torch.Tensor],
    image_shapes: List[Tuple[int, int]],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
):
    """Run :func:`fast_rcnn_inference_single_image` on every image.

    Args:
        boxes: per image, (Ri, K*4) class-specific or (Ri, 4) class-agnostic boxes, as given
            by :meth:`FastRCNNOutputLayers.predict_boxes`.
        scores: per image, (Ri, K+1) class probabilities, as given by
            :meth:`FastRCNNOutputLayers.predict_probs`.
        image_shapes: (h, w) of every image, for clipping.
        score_thresh: only detections scoring strictly above this are kept.
        nms_thresh: IoU threshold of the per-class NMS, in [0, 1].
        topk_per_image: detections kept per image; < 0 keeps all.

    Returns:
        list[Instances]: per image, the detections: ``pred_boxes``, ``scores``, ``pred_classes``.
        list[Tensor]: per image, the index in [0, Ri) of the region each detection comes from.
    """
    result_per_image = [
        fast_rcnn_inference_single_image(
            boxes_per_image, scores_per_image, image_shape, score_thresh, nms_thresh, topk_per_image
        )
        for scores_per_image, boxes_per_image, image_shape in zip(scores, boxes, image_shapes)
    ]
    return [x[0] for x in result_per_image], [x[1] for x in result_per_image]


def fast_rcnn_inference_single_image(
    boxes,
    scores,
    image_shape: Tuple[int, int],
    score_thresh: float,
    nms_thresh: float,
    topk_per_image: int,
):
    """One image of :func:`fast_rcnn_inference`: threshold, per-class NMS, top-k.

    Regions with a non-finite box or score are dropped first; boxes are clipped to the image;
    every (region, class) pair with score > ``score_thresh`` is a candidate; NMS runs per class;
    the result is sorted by decreasing score over all classes.
    """
    valid_mask = torch.isfinite(boxes).all(dim=1) & torch.isfinite(scores).all(dim=1)
    if not valid_mask.all():
        boxes = boxes[valid_mask]
        scores = scores[valid_mask]

    scores = scores[:, :-1]  # drop the background column
    num_bbox_reg_classes = boxes.shape[1] // 4
    # Boxes only for its clip()
    boxes = Boxes(boxes.reshape(-1, 4))
    boxes.clip(image_shape)
    boxes = boxes.tensor.view(-1, num_bbox_reg_classes, 4)  # R x C x 4

    # 1. Keep (region, class) pairs above the score threshold: fewer boxes for the NMS.
    filter_mask = scores > score_thresh  # R x K
    # R' x 2: column 0 is the region index, column 1 the class index
    filter_inds = filter_mask.nonzero()
    if num_bbox_reg_classes == 1:
        boxes = boxes[filter_inds[:, 0], 0]
    else:
        boxes = boxes[filter_mask]
    scores = scores[filter_mask]

    # 2. NMS for each class independently.
    keep = batched_nms(boxes, scores, filter_inds[:, 1], nms_thresh)
    if topk_per_image >= 0:
        keep = keep[:topk_per_image]
    boxes, scores, filter_inds = boxes[keep], scores[keep], filter_inds[keep]

    result = Instances(image_shape)
    result.pred_boxes = Boxes(boxes)
    result.scores = scores
    result.pred_classes = filter_inds[:, 1]
    return result, filter_inds[:, 0]


class FastRCNNOutputLayers(nn.Module):
    """Two linear layers on the box features: class scores (``cls_score``, K+1 outputs) and
    per-class box deltas (``bbox_pred``, K*4 outputs, or 4 when class-agnostic)."""

    @configurable
    def __init__(
        self,
        input_shape: ShapeSpec,
        *,
        box2box_transform,
        num_classes: int,
        test_score_thresh: float = 0.0,
        test_nms_thresh: float = 0.5,
        test_topk_per_image: int = 100,
        cls_agnostic_bbox_reg: bool = False,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        loss_weight: Union[float, Dict[str, float]] = 1.0,
        use_fed_loss: bool = False,
        use_sigmoid_ce: bool = False,
    ):
        """
        Args:
            input_shape: shape of the box features (flattened to C*H*W).
            box2box_transform (Box2BoxTransform): decodes deltas relative to the proposals.
            num_classes: number of foreground classes K.
            test_score_thresh: minimum score of a detection.
            test_nms_thresh: IoU threshold of the per-class NMS.
            test_topk_per_image: detections kept per image.
            cls_agnostic_bbox_reg: one box regression shared by all classes.
            smooth_l1_beta, box_reg_loss_type, loss_weight: training only; stored, unused.
            use_fed_loss: trained with the federated loss, which implies ``use_sigmoid_ce``.
            use_sigmoid_ce: class probabilities are per-class sigmoids instead of a softmax
                (detectron2 > v0.6; off by default).
        """
        super().__init__()
        if isinstance(input_shape, int):  # backward compatibility, as in detectron2
            input_shape = ShapeSpec(channels=input_shape)
        self.num_classes = num_classes
        input_size = input_shape.channels * (input_shape.width or 1) * (input_shape.height or 1)
        # K foreground classes and one background class
        self.cls_score = nn.Linear(input_size, num_classes + 1)
        num_bbox_reg_classes = 1 if cls_agnostic_bbox_reg else num_classes
        box_dim = len(box2box_transform.weights)
        self.bbox_pred = nn.Linear(input_size, num_bbox_reg_classes * box_dim)

        nn.init.normal_(self.cls_score.weight, std=0.01)
        nn.init.normal_(self.bbox_pred.weight, std=0.001)
        for layer in [self.cls_score, self.bbox_pred]:
            nn.init.constant_(layer.bias, 0)

        self.box2box_transform = box2box_transform
        self.smooth_l1_beta = smooth_l1_beta
        self.test_score_thresh = test_score_thresh
        self.test_nms_thresh = test_nms_thresh
        self.test_topk_per_image = test_topk_per_image
        self.box_reg_loss_type = box_reg_loss_type
        if isinstance(loss_weight, float):
            loss_weight = {"loss_cls": loss_weight, "loss_box_reg": loss_weight}
        self.loss_weight = loss_weight
        self.use_fed_loss = use_fed_loss
        self.use_sigmoid_ce = use_sigmoid_ce or use_fed_loss

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {
            "input_shape": input_shape,
            "box2box_transform": Box2BoxTransform(weights=cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_WEIGHTS),
            "num_classes": cfg.MODEL.ROI_HEADS.NUM_CLASSES,
            "cls_agnostic_bbox_reg": cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG,
            "smooth_l1_beta": cfg.MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA,
            "test_score_thresh": cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST,
            "test_nms_thresh": cfg.MODEL.ROI_HEADS.NMS_THRESH_TEST,
            "test_topk_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "box_reg_loss_type": cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_TYPE,
            "loss_weight": {"loss_box_reg": cfg.MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT},
            "use_fed_loss": cfg.MODEL.ROI_BOX_HEAD.USE_FED_LOSS,
            "use_sigmoid_ce": cfg.MODEL.ROI_BOX_HEAD.USE_SIGMOID_CE,
        }

    def forward(self, x: torch.Tensor):
        """
        Args:
            x: per-region features, (R, C) or (R, C, H, W) (flattened).

        Returns:
            (Tensor, Tensor): class scores (R, K+1) and box deltas (R, K*4) or (R, 4).
        """
        if x.dim() > 2:
            x = torch.flatten(x, start_dim=1)
        scores = self.cls_score(x)
        proposal_deltas = self.bbox_pred(x)
        return scores, proposal_deltas

    def inference(self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]):
        """
        Args:
            predictions: the output of :meth:`forward`.
            proposals: per image, Instances with ``proposal_boxes``; their ``image_size`` is
                used for clipping.

        Returns:
            list[Instances]: detections per image (see :func:`fast_rcnn_inference`).
            list[Tensor]: per image, the index of the proposal of every detection.
        """
        boxes = self.predict_boxes(predictions, proposals)
        scores = self.predict_probs(predictions, proposals)
        image_shapes = [x.image_size for x in proposals]
        return fast_rcnn_inference(
            boxes,
            scores,
            image_shapes,
            self.test_score_thresh,
            self.test_nms_thresh,
            self.test_topk_per_image,
        )

    def predict_boxes(
        self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]
    ):
        """Decoded boxes per image: (Ri, K*B), or (Ri, B) when class-agnostic."""
        if not len(proposals):
            return []
        _, proposal_deltas = predictions
        num_prop_per_image = [len(p) for p in proposals]
        proposal_boxes = cat([p.proposal_boxes.tensor for p in proposals], dim=0)
        predict_boxes = self.box2box_transform.apply_deltas(proposal_deltas, proposal_boxes)
        return predict_boxes.split(num_prop_per_image)

    def predict_probs(
        self, predictions: Tuple[torch.Tensor, torch.Tensor], proposals: List[Instances]
    ):
        """Class probabilities per image, (Ri, K+1): softmax, or sigmoid with ``use_sigmoid_ce``."""
        scores, _ = predictions
        num_inst_per_image = [len(p) for p in proposals]
        if self.use_sigmoid_ce:
            probs = scores.sigmoid()
        else:
            probs = F.softmax(scores, dim=-1)
        return probs.split(num_inst_per_image, dim=0)
