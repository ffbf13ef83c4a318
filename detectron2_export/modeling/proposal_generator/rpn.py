"""Region Proposal Network (detectron2.modeling.proposal_generator.rpn, v0.6), inference only.

The head predicts, for every anchor of every level, an objectness logit and box deltas; ``RPN``
decodes the deltas against the anchors and keeps the best boxes with
:func:`find_top_rpn_proposals`.

Shapes: N images, L feature levels, A anchors per position (the same on every level), Hi x Wi the
size of level i, B the size of a box's deltas (4).
"""

from typing import Dict, List, Optional, Tuple, Union

import torch
from torch import nn

from detectron2_export.config import configurable
from detectron2_export.layers import Conv2d, ShapeSpec
from detectron2_export.structures import Boxes, ImageList, Instances
from detectron2_export.utils.registry import Registry

from ..anchor_generator import build_anchor_generator
from ..box_regression import Box2BoxTransform
from .build import PROPOSAL_GENERATOR_REGISTRY
from .proposal_utils import find_top_rpn_proposals

__all__ = ["RPN_HEAD_REGISTRY", "build_rpn_head", "StandardRPNHead", "RPN"]

RPN_HEAD_REGISTRY = Registry("RPN_HEAD")
RPN_HEAD_REGISTRY.__doc__ = """
Registry for RPN heads, which take feature maps and perform
objectness classification and bounding box regression for anchors.

The registered object will be called with `obj(cfg, input_shape)`.
The call should return a `nn.Module` object.
"""

def build_rpn_head(cfg, input_shape):
    """Build the RPN head named by ``cfg.MODEL.RPN.HEAD_NAME``."""
    name = cfg.MODEL.RPN.HEAD_NAME
    return RPN_HEAD_REGISTRY.get(name)(cfg, input_shape)


@RPN_HEAD_REGISTRY.register()
class StandardRPNHead(nn.Module):
    """Shared 3x3 conv(s) + ReLU, then two sibling 1x1 convs: objectness logits and anchor deltas.

    The same weights run on every feature level.
    """

    @configurable
    def __init__(
        self, *, in_channels: int, num_anchors: int, box_dim: int = 4, conv_dims: List[int] = (-1,)
    ):
        """
        Args:
            in_channels: channels of every input feature map.
            num_anchors: anchors per spatial position (A).
            box_dim: size of a box's deltas (B).
            conv_dims: output channels of the hidden 3x3 convs; -1 keeps ``in_channels``. One
                entry gives a single conv named ``conv``; several give ``conv.conv{k}``.
        """
        super().__init__()
        cur_channels = in_channels
        if len(conv_dims) == 1:
            out_channels = cur_channels if conv_dims[0] == -1 else conv_dims[0]
            self.conv = self._get_rpn_conv(cur_channels, out_channels)
            cur_channels = out_channels
        else:
            self.conv = nn.Sequential()
            for k, conv_dim in enumerate(conv_dims):
                out_channels = cur_channels if conv_dim == -1 else conv_dim
                if out_channels <= 0:
                    raise ValueError(
                        f"StandardRPNHead: conv_dims[{k}]={conv_dim}, expected a positive int or -1"
                    )
                self.conv.add_module(f"conv{k}", self._get_rpn_conv(cur_channels, out_channels))
                cur_channels = out_channels
        self.objectness_logits = nn.Conv2d(cur_channels, num_anchors, kernel_size=1, stride=1)
        self.anchor_deltas = nn.Conv2d(cur_channels, num_anchors * box_dim, kernel_size=1, stride=1)

        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.constant_(layer.bias, 0)

    def _get_rpn_conv(self, in_channels: int, out_channels: int) -> nn.Module:
        return Conv2d(
            in_channels, out_channels, kernel_size=3, stride=1, padding=1, activation=nn.ReLU()
        )

    @classmethod
    def from_config(cls, cfg, input_shape):
        in_channels = [s.channels for s in input_shape]
        assert len(set(in_channels)) == 1, "Each level must have the same channel!"
        # The head must predict as many anchors as the generator that RPN builds from the same cfg.
        anchor_generator = build_anchor_generator(cfg, input_shape)
        num_anchors = anchor_generator.num_anchors
        assert len(set(num_anchors)) == 1, "Each level must have the same number of cell anchors"
        return {
            "in_channels": in_channels[0],
            "num_anchors": num_anchors[0],
            "box_dim": anchor_generator.box_dim,
            "conv_dims": cfg.MODEL.RPN.CONV_DIMS,
        }

    def forward(self, features: List[torch.Tensor]):
        """
        Args:
            features: L feature maps, each (N, C, Hi, Wi).

        Returns:
            list[Tensor]: L objectness logits, each (N, A, Hi, Wi).
            list[Tensor]: L anchor deltas, each (N, A*B, Hi, Wi).
        """
        pred_objectness_logits = []
        pred_anchor_deltas = []
        for x in features:
            t = self.conv(x)
            pred_objectness_logits.append(self.objectness_logits(t))
            pred_anchor_deltas.append(self.anchor_deltas(t))
        return pred_objectness_logits, pred_anchor_deltas


@PROPOSAL_GENERATOR_REGISTRY.register()
class RPN(nn.Module):
    """Region Proposal Network, introduced by the Faster R-CNN paper (inference only).

    The training-only arguments of detectron2's constructor are accepted and stored so that code
    written against detectron2 builds unchanged, but ``forward`` refuses to run in training mode.
    """

    @configurable
    def __init__(
        self,
        *,
        in_features: List[str],
        head: nn.Module,
        anchor_generator: nn.Module,
        box2box_transform: Box2BoxTransform,
        pre_nms_topk: Tuple[float, float],
        post_nms_topk: Tuple[float, float],
        nms_thresh: float = 0.7,
        min_box_size: float = 0.0,
        anchor_boundary_thresh: float = -1.0,
        anchor_matcher: Optional[object] = None,
        batch_size_per_image: int = 256,
        positive_fraction: float = 0.5,
        loss_weight: Union[float, Dict[str, float]] = 1.0,
        box_reg_loss_type: str = "smooth_l1",
        smooth_l1_beta: float = 0.0,
    ):
        """
        Args:
            in_features: names of the input feature maps, in order.
            head: module mapping a list of feature maps to objectness logits and anchor deltas.
            anchor_generator: module giving the anchors (list[Boxes], one per level).
            box2box_transform: decodes anchor deltas into boxes.
            pre_nms_topk: (train, test) proposals kept per level before NMS.
            post_nms_topk: (train, test) proposals kept per image after NMS.
            nms_thresh: IoU threshold of the NMS on proposals.
            min_box_size: proposals with a side not above this (pixels) are removed.
            anchor_boundary_thresh: training only (anchors out of the image by more are ignored).
            anchor_matcher, batch_size_per_image, positive_fraction, loss_weight,
            box_reg_loss_type, smooth_l1_beta: training only; stored, unused.
        """
        super().__init__()
        self.in_features = in_features
        self.rpn_head = head
        self.anchor_generator = anchor_generator
        self.anchor_matcher = anchor_matcher
        self.box2box_transform = box2box_transform
        self.batch_size_per_image = batch_size_per_image
        self.positive_fraction = positive_fraction
        # self.training -> setting
        self.pre_nms_topk = {True: pre_nms_topk[0], False: pre_nms_topk[1]}
        self.post_nms_topk = {True: post_nms_topk[0], False: post_nms_topk[1]}
        self.nms_thresh = nms_thresh
        self.min_box_size = float(min_box_size)
        self.anchor_boundary_thresh = anchor_boundary_thresh
        if isinstance(loss_weight, float):
            loss_weight = {"loss_rpn_cls": loss_weight, "loss_rpn_loc": loss_weight}
        self.loss_weight = loss_weight
        self.box_reg_loss_type = box_reg_loss_type
        self.smooth_l1_beta = smooth_l1_beta

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        in_features = cfg.MODEL.RPN.IN_FEATURES
        level_shapes = [input_shape[f] for f in in_features]
        return {
            "in_features": in_features,
            "min_box_size": cfg.MODEL.PROPOSAL_GENERATOR.MIN_SIZE,
            "nms_thresh": cfg.MODEL.RPN.NMS_THRESH,
            "batch_size_per_image": cfg.MODEL.RPN.BATCH_SIZE_PER_IMAGE,
            "positive_fraction": cfg.MODEL.RPN.POSITIVE_FRACTION,
            "loss_weight": {
                "loss_rpn_cls": cfg.MODEL.RPN.LOSS_WEIGHT,
                "loss_rpn_loc": cfg.MODEL.RPN.BBOX_REG_LOSS_WEIGHT * cfg.MODEL.RPN.LOSS_WEIGHT,
            },
            "anchor_boundary_thresh": cfg.MODEL.RPN.BOUNDARY_THRESH,
            "box2box_transform": Box2BoxTransform(weights=cfg.MODEL.RPN.BBOX_REG_WEIGHTS),
            "box_reg_loss_type": cfg.MODEL.RPN.BBOX_REG_LOSS_TYPE,
            "smooth_l1_beta": cfg.MODEL.RPN.SMOOTH_L1_BETA,
            "pre_nms_topk": (cfg.MODEL.RPN.PRE_NMS_TOPK_TRAIN, cfg.MODEL.RPN.PRE_NMS_TOPK_TEST),
            "post_nms_topk": (cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN, cfg.MODEL.RPN.POST_NMS_TOPK_TEST),
            "anchor_generator": build_anchor_generator(cfg, level_shapes),
            "head": build_rpn_head(cfg, level_shapes),
        }

    def forward(
        self,
        images: ImageList,
        features: Dict[str, torch.Tensor],
        gt_instances: Optional[List[Instances]] = None,
    ):
        """
        Args:
            images: the N input images (only ``image_sizes`` is used, for clipping).
            features: feature maps by name, each (N, C, Hi, Wi).
            gt_instances: training only; must be None.

        Returns:
            list[Instances]: N Instances with ``proposal_boxes`` and ``objectness_logits``.
            dict: the losses, always empty.
        """
        if self.training:
            raise NotImplementedError(
                "RPN: training=True, expected eval mode (detectron2_export is inference-only)"
            )
        features = [features[f] for f in self.in_features]
        anchors = self.anchor_generator(features)

        pred_objectness_logits, pred_anchor_deltas = self.rpn_head(features)
        pred_objectness_logits = [
            # (N, A, Hi, Wi) -> (N, Hi, Wi, A) -> (N, Hi*Wi*A)
            score.permute(0, 2, 3, 1).flatten(1)
            for score in pred_objectness_logits
        ]
        pred_anchor_deltas = [
            # (N, A*B, Hi, Wi) -> (N, A, B, Hi, Wi) -> (N, Hi, Wi, A, B) -> (N, Hi*Wi*A, B)
            x.view(x.shape[0], -1, self.anchor_generator.box_dim, x.shape[-2], x.shape[-1])
            .permute(0, 3, 4, 1, 2)
            .flatten(1, -2)
            for x in pred_anchor_deltas
        ]

        losses: Dict[str, torch.Tensor] = {}
        proposals = self.predict_proposals(
            anchors, pred_objectness_logits, pred_anchor_deltas, images.image_sizes
        )
        return proposals, losses

    def predict_proposals(
        self,
        anchors: List[Boxes],
        pred_objectness_logits: List[torch.Tensor],
        pred_anchor_deltas: List[torch.Tensor],
        image_sizes: List[Tuple[int, int]],
    ):
        """Decode all anchors and keep the top proposals of every image.

        Returns:
            list[Instances]: one per image, fields ``proposal_boxes`` and ``objectness_logits``.
        """
        # Proposals are constants for the second stage: no gradient flows through them.
        with torch.no_grad():
            pred_proposals = self._decode_proposals(anchors, pred_anchor_deltas)
            return find_top_rpn_proposals(
                pred_proposals,
                pred_objectness_logits,
                image_sizes,
                self.nms_thresh,
                self.pre_nms_topk[self.training],
                self.post_nms_topk[self.training],
                self.min_box_size,
                self.training,
            )

    def _decode_proposals(self, anchors: List[Boxes], pred_anchor_deltas: List[torch.Tensor]):
        """Apply each level's deltas (N, Hi*Wi*A, B) to its anchors -> L tensors (N, Hi*Wi*A, B)."""
        N = pred_anchor_deltas[0].shape[0]
        proposals = []
        for anchors_i, pred_anchor_deltas_i in zip(anchors, pred_anchor_deltas):
            B = anchors_i.tensor.size(1)
            pred_anchor_deltas_i = pred_anchor_deltas_i.reshape(-1, B)
            # the same anchors for every image: (N*Hi*Wi*A, B)
            anchors_i = anchors_i.tensor.unsqueeze(0).expand(N, -1, -1).reshape(-1, B)
            proposals_i = self.box2box_transform.apply_deltas(pred_anchor_deltas_i, anchors_i)
            proposals.append(proposals_i.view(N, -1, B))
        return proposals
