"""FCOS (detectron2.modeling.meta_arch.fcos): an anchor-free dense detector, inference only.

Each location of each level is one "anchor point", represented (as in detectron2) by a square
box of side the level's stride centred on the location, and predicts class logits, the distances
(l, t, r, b) to the box sides in units of the stride (:class:`Box2BoxTransformLinear`) and a
centerness logit. A candidate's score is ``sqrt(sigmoid(class) * sigmoid(centerness))`` (eq. 4 of
"FCOS: A Simple and Strong Anchor-free Object Detector"); then, as RetinaNet: score threshold and
top-k per level, class-wise NMS, and the best ``max_detections_per_image``.

detectron2 builds FCOS from LazyConfig only (``configs/common/models/fcos.py``); it is not in
the meta-architecture registry.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from ...layers import ShapeSpec
from ...structures import ImageList, Instances
from ..anchor_generator import DefaultAnchorGenerator
from ..backbone import Backbone
from ..box_regression import Box2BoxTransformLinear
from .dense_detector import DenseDetector
from .retinanet import RetinaNet, RetinaNetHead

__all__ = ["FCOS", "FCOSHead"]


class FCOS(DenseDetector):
    """FCOS. Arguments mean the same as in :class:`RetinaNet`, plus:

    Args:
        box2box_transform: defaults to ``Box2BoxTransformLinear(normalize_by_size=True)``.
        center_sampling_radius: training only (radius, in strides, of a ground-truth box's
            "centre" region whose anchor points are positives); stored, unused.
        focal_loss_alpha, focal_loss_gamma: training only; stored, unused.
        test_score_thresh: keep candidates whose ``sqrt(class * centerness)`` score is > this.
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        head_in_features: Optional[Sequence[str]] = None,
        box2box_transform=None,
        num_classes: int,
        center_sampling_radius: float = 1.5,
        focal_loss_alpha: float = 0.25,
        focal_loss_gamma: float = 2.0,
        test_score_thresh: float = 0.2,
        test_topk_candidates: int = 1000,
        test_nms_thresh: float = 0.6,
        max_detections_per_image: int = 100,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
    ):
        super().__init__(backbone, head, head_in_features, pixel_mean=pixel_mean, pixel_std=pixel_std)
        self.num_classes = num_classes

        # one anchor point per location: a box of side the stride
        feature_shapes = backbone.output_shape()
        fpn_strides = [feature_shapes[k].stride for k in self.head_in_features]
        self.anchor_generator = DefaultAnchorGenerator(
            sizes=[[k] for k in fpn_strides], aspect_ratios=[1.0], strides=fpn_strides
        )
        if box2box_transform is None:
            box2box_transform = Box2BoxTransformLinear(normalize_by_size=True)
        self.box2box_transform = box2box_transform

        self.center_sampling_radius = float(center_sampling_radius)
        self.focal_loss_alpha = focal_loss_alpha
        self.focal_loss_gamma = focal_loss_gamma

        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image

    def forward_inference(
        self, images: ImageList, features: List[Tensor], predictions: List[List[Tensor]]
    ) -> List[Instances]:
        """Per image: geometric mean of class and centerness probabilities, then decode + NMS."""
        pred_logits, pred_anchor_deltas, pred_centerness = self._transpose_dense_predictions(
            predictions, [self.num_classes, 4, 1]
        )
        anchors = self.anchor_generator(features)

        results: List[Instances] = []
        for img_idx, image_size in enumerate(images.image_sizes):
            scores_per_image = [
                torch.sqrt(x[img_idx].sigmoid_() * y[img_idx].sigmoid_())
                for x, y in zip(pred_logits, pred_centerness)
            ]
            deltas_per_image = [x[img_idx] for x in pred_anchor_deltas]
            results.append(self.inference_single_image(anchors, scores_per_image, deltas_per_image, image_size))
        return results

    # decode, class-wise NMS and the best max_detections_per_image, exactly as RetinaNet
    inference_single_image = RetinaNet.inference_single_image


class FCOSHead(RetinaNetHead):
    """:class:`RetinaNetHead` with one anchor per location and a centerness branch (``ctrness``,
    a 3x3 conv on the box subnet's output). No per-level learnable scale: regression targets are
    already normalised by the stride."""

    def __init__(self, *, input_shape: List[ShapeSpec], conv_dims: List[int], **kwargs):
        super().__init__(input_shape=input_shape, conv_dims=conv_dims, num_anchors=1, **kwargs)
        self._num_features = len(input_shape)
        self.ctrness = nn.Conv2d(conv_dims[-1], 1, kernel_size=3, stride=1, padding=1)
        nn.init.normal_(self.ctrness.weight, std=0.01)
        nn.init.constant_(self.ctrness.bias, 0)

    def forward(self, features: List[Tensor]) -> Tuple[List[Tensor], List[Tensor], List[Tensor]]:
        """Per level: (N, K, Hi, Wi) logits, (N, 4, Hi, Wi) deltas, (N, 1, Hi, Wi) centerness."""
        assert len(features) == self._num_features
        logits = []
        bbox_reg = []
        ctrness = []
        for feature in features:
            logits.append(self.cls_score(self.cls_subnet(feature)))
            bbox_feature = self.bbox_subnet(feature)
            bbox_reg.append(self.bbox_pred(bbox_feature))
            ctrness.append(self.ctrness(bbox_feature))
        return logits, bbox_reg, ctrness
