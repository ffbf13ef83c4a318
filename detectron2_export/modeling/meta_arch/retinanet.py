"""RetinaNet (detectron2.modeling.meta_arch.retinanet): a dense detector with focal-loss heads.

Inference only; the loss-related arguments are accepted (and stored) so that configs and
checkpoints of trained models work unchanged.
"""

from __future__ import annotations

import logging
import math
from typing import List, Sequence, Tuple

from torch import Tensor, nn

from ...config.configurable import configurable
from ...errors import ConfigError
from ...layers import ShapeSpec, batched_nms, get_norm
from ...structures import Boxes, ImageList, Instances
from ...utils.training_only import lazy_fvcore_nn
from ..anchor_generator import build_anchor_generator
from ..backbone import Backbone, build_backbone
from ..box_regression import Box2BoxTransform
from .build import META_ARCH_REGISTRY
from .dense_detector import DenseDetector, permute_to_N_HWA_K

__all__ = ["RetinaNet", "RetinaNetHead", "permute_to_N_HWA_K"]

logger = logging.getLogger(__name__)

# detectron2 imports fvcore's focal losses (training only) into this module
__getattr__ = lazy_fvcore_nn(__name__, ("sigmoid_focal_loss", "sigmoid_focal_loss_jit"))


@META_ARCH_REGISTRY.register()
class RetinaNet(DenseDetector):
    """RetinaNet ("Focal Loss for Dense Object Detection").

    Args:
        backbone: a :class:`Backbone`.
        head: a module mapping per-level features to (per-level class logits
            (N, A * K, Hi, Wi), per-level box deltas (N, A * 4, Hi, Wi)), e.g. :class:`RetinaNetHead`.
        head_in_features: backbone features fed to the head.
        anchor_generator: makes the anchors of each level (e.g. DefaultAnchorGenerator).
        box2box_transform: decodes deltas against anchors.
        anchor_matcher: the anchor-to-ground-truth matcher (training only; may be None).
        num_classes: K, the number of foreground classes.
        focal_loss_alpha, focal_loss_gamma, smooth_l1_beta, box_reg_loss_type: training only.
        test_score_thresh: keep candidates whose probability is > this.
        test_topk_candidates: keep at most this many candidates per level before NMS.
        test_nms_thresh: IoU threshold of the class-wise NMS.
        max_detections_per_image: keep at most this many detections per image after NMS.
        pixel_mean, pixel_std: per-channel normalisation of the input images.
        vis_period, input_format: training visualisation settings, kept for compatibility.
    """

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        head: nn.Module,
        head_in_features: Sequence[str],
        anchor_generator: nn.Module,
        box2box_transform: Box2BoxTransform,
        anchor_matcher=None,
        num_classes: int,
        focal_loss_alpha: float = 0.25,
        focal_loss_gamma: float = 2.0,
        smooth_l1_beta: float = 0.0,
        box_reg_loss_type: str = "smooth_l1",
        test_score_thresh: float = 0.05,
        test_topk_candidates: int = 1000,
        test_nms_thresh: float = 0.5,
        max_detections_per_image: int = 100,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        vis_period: int = 0,
        input_format: str = "BGR",
    ):
        super().__init__(backbone, head, head_in_features, pixel_mean=pixel_mean, pixel_std=pixel_std)
        self.num_classes = num_classes

        self.anchor_generator = anchor_generator
        self.box2box_transform = box2box_transform
        self.anchor_matcher = anchor_matcher

        self.focal_loss_alpha = focal_loss_alpha
        self.focal_loss_gamma = focal_loss_gamma
        self.smooth_l1_beta = smooth_l1_beta
        self.box_reg_loss_type = box_reg_loss_type

        self.test_score_thresh = test_score_thresh
        self.test_topk_candidates = test_topk_candidates
        self.test_nms_thresh = test_nms_thresh
        self.max_detections_per_image = max_detections_per_image

        self.vis_period = vis_period
        self.input_format = input_format

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        backbone_shape = backbone.output_shape()
        feature_shapes = [backbone_shape[f] for f in cfg.MODEL.RETINANET.IN_FEATURES]
        head = RetinaNetHead(cfg, feature_shapes)
        anchor_generator = build_anchor_generator(cfg, feature_shapes)
        return {
            "backbone": backbone,
            "head": head,
            "anchor_generator": anchor_generator,
            "box2box_transform": Box2BoxTransform(weights=cfg.MODEL.RETINANET.BBOX_REG_WEIGHTS),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "num_classes": cfg.MODEL.RETINANET.NUM_CLASSES,
            "head_in_features": cfg.MODEL.RETINANET.IN_FEATURES,
            "focal_loss_alpha": cfg.MODEL.RETINANET.FOCAL_LOSS_ALPHA,
            "focal_loss_gamma": cfg.MODEL.RETINANET.FOCAL_LOSS_GAMMA,
            "smooth_l1_beta": cfg.MODEL.RETINANET.SMOOTH_L1_LOSS_BETA,
            "box_reg_loss_type": cfg.MODEL.RETINANET.BBOX_REG_LOSS_TYPE,
            "test_score_thresh": cfg.MODEL.RETINANET.SCORE_THRESH_TEST,
            "test_topk_candidates": cfg.MODEL.RETINANET.TOPK_CANDIDATES_TEST,
            "test_nms_thresh": cfg.MODEL.RETINANET.NMS_THRESH_TEST,
            "max_detections_per_image": cfg.TEST.DETECTIONS_PER_IMAGE,
            "vis_period": cfg.VIS_PERIOD,
            "input_format": cfg.INPUT.FORMAT,
        }

    def forward_inference(
        self, images: ImageList, features: List[Tensor], predictions: List[List[Tensor]]
    ) -> List[Instances]:
        """Per image: sigmoid scores, per-level threshold + top-k + decode, class-wise NMS."""
        pred_logits, pred_anchor_deltas = self._transpose_dense_predictions(
            predictions, [self.num_classes, 4]
        )
        anchors = self.anchor_generator(features)

        results: List[Instances] = []
        for img_idx, image_size in enumerate(images.image_sizes):
            scores_per_image = [x[img_idx].sigmoid_() for x in pred_logits]
            deltas_per_image = [x[img_idx] for x in pred_anchor_deltas]
            results.append(
                self.inference_single_image(anchors, scores_per_image, deltas_per_image, image_size)
            )
        return results

    def inference_single_image(
        self,
        anchors: List[Boxes],
        box_cls: List[Tensor],
        box_delta: List[Tensor],
        image_size: Tuple[int, int],
    ) -> Instances:
        """Detections of one image.

        Args:
            anchors: per-level anchors (H * W * A boxes each).
            box_cls: per-level (H * W * A, K) class probabilities.
            box_delta: per-level (H * W * A, 4) box deltas.
            image_size: (height, width) of the network input of this image.

        Returns:
            At most ``max_detections_per_image`` instances, by decreasing score.
        """
        pred = self._decode_multi_level_predictions(
            anchors,
            box_cls,
            box_delta,
            self.test_score_thresh,
            self.test_topk_candidates,
            image_size,
        )
        keep = batched_nms(pred.pred_boxes.tensor, pred.scores, pred.pred_classes, self.test_nms_thresh)
        return pred[keep[: self.max_detections_per_image]]


class RetinaNetHead(nn.Module):
    """The RetinaNet head: a classification and a box subnet shared across levels.

    Each subnet is ``len(conv_dims)`` 3x3 convs (each followed by the norm, if any, and ReLU),
    then ``cls_score`` (A * K channels) or ``bbox_pred`` (A * 4 channels).

    Args:
        input_shape: shapes of the input feature levels (all with the same channels).
        num_classes: K.
        num_anchors: A, anchors per location (the same on every level).
        conv_dims: output channels of the subnet convs.
        norm: normalisation after each subnet conv ("" for none). "BN"/"SyncBN" (one
            BatchNorm per level in detectron2) are not supported.
        prior_prob: initial foreground probability; sets the ``cls_score`` bias.
    """

    @configurable
    def __init__(
        self,
        *,
        input_shape: List[ShapeSpec],
        num_classes: int,
        num_anchors: int,
        conv_dims: List[int],
        norm: str = "",
        prior_prob: float = 0.01,
    ):
        super().__init__()
        self._num_features = len(input_shape)
        if norm in ("BN", "SyncBN"):
            raise ConfigError(
                f"RetinaNetHead: MODEL.RETINANET.NORM={norm!r}, expected '' or a norm shared across "
                "levels such as 'GN' (per-level BatchNorm is not supported by detectron2_export)"
            )
        if norm:
            norm_name = str(type(get_norm(norm, 32)))
            if "BN" in norm_name:
                logger.warning("Shared BatchNorm (type=%s) may not work well in RetinaNetHead.", norm_name)

        cls_subnet = []
        bbox_subnet = []
        for in_channels, out_channels in zip([input_shape[0].channels] + list(conv_dims), conv_dims):
            for subnet in (cls_subnet, bbox_subnet):
                subnet.append(nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1))
                if norm:
                    subnet.append(get_norm(norm, out_channels))
                subnet.append(nn.ReLU())
        self.cls_subnet = nn.Sequential(*cls_subnet)
        self.bbox_subnet = nn.Sequential(*bbox_subnet)
        self.cls_score = nn.Conv2d(
            conv_dims[-1], num_anchors * num_classes, kernel_size=3, stride=1, padding=1
        )
        self.bbox_pred = nn.Conv2d(conv_dims[-1], num_anchors * 4, kernel_size=3, stride=1, padding=1)

        for modules in (self.cls_subnet, self.bbox_subnet, self.cls_score, self.bbox_pred):
            for layer in modules.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.normal_(layer.weight, mean=0, std=0.01)
                    nn.init.constant_(layer.bias, 0)
        # Start with sigmoid(cls_score) == prior_prob everywhere, for a stable focal loss.
        bias_value = -(math.log((1 - prior_prob) / prior_prob))
        nn.init.constant_(self.cls_score.bias, bias_value)

    @classmethod
    def from_config(cls, cfg, input_shape: List[ShapeSpec]):
        num_anchors = build_anchor_generator(cfg, input_shape).num_cell_anchors
        if len(set(num_anchors)) != 1:
            raise ConfigError(
                f"RetinaNetHead: anchors per location {num_anchors} (from MODEL.ANCHOR_GENERATOR), "
                "expected the same number on every level"
            )
        return {
            "input_shape": input_shape,
            "num_classes": cfg.MODEL.RETINANET.NUM_CLASSES,
            "conv_dims": [input_shape[0].channels] * cfg.MODEL.RETINANET.NUM_CONVS,
            "prior_prob": cfg.MODEL.RETINANET.PRIOR_PROB,
            "norm": cfg.MODEL.RETINANET.NORM,
            "num_anchors": num_anchors[0],
        }

    def forward(self, features: List[Tensor]) -> Tuple[List[Tensor], List[Tensor]]:
        """Per-level (N, A * K, Hi, Wi) logits and (N, A * 4, Hi, Wi) deltas."""
        assert len(features) == self._num_features
        logits = []
        bbox_reg = []
        for feature in features:
            logits.append(self.cls_score(self.cls_subnet(feature)))
            bbox_reg.append(self.bbox_pred(self.bbox_subnet(feature)))
        return logits, bbox_reg
