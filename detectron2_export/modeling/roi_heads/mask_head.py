"""Mask heads of Mask R-CNN (detectron2.modeling.roi_heads.mask_head, v0.6), inference only.

Heads call :func:`mask_rcnn_inference` through this module's globals, so that the Caffe2 export
can replace it (``mock.patch("...mask_head.mask_rcnn_inference")``); ``len`` is looked up the
same way so the TorchScript export can keep instance counts symbolic while tracing.
"""

from typing import List

import torch
from torch import nn

from detectron2_export.config import configurable
from detectron2_export.layers import (
    Conv2d,
    ConvTranspose2d,
    ShapeSpec,
    cat,
    get_norm,
    move_device_like,
)
from detectron2_export.structures import Instances
from detectron2_export.utils.registry import Registry
from detectron2_export.utils.training_only import training_only_function

from ..weight_init import c2_msra_fill

__all__ = [
    "BaseMaskRCNNHead",
    "MaskRCNNConvUpsampleHead",
    "build_mask_head",
    "mask_rcnn_inference",
    "mask_rcnn_loss",
    "ROI_MASK_HEAD_REGISTRY",
]

mask_rcnn_loss = training_only_function(__name__, "mask_rcnn_loss")

ROI_MASK_HEAD_REGISTRY = Registry("ROI_MASK_HEAD")
ROI_MASK_HEAD_REGISTRY.__doc__ = """
Registry for mask heads, which predicts instance masks given
per-region features.

The registered object will be called with `obj(cfg, input_shape)`.
"""


def mask_rcnn_inference(pred_mask_logits: torch.Tensor, pred_instances: List[Instances]):
    """Turn mask logits into per-instance probabilities, stored as ``pred_masks``.

    For class-specific heads the channel of each instance's ``pred_classes`` is selected; a
    class-agnostic head has a single channel. Sigmoid gives the probabilities.

    Args:
        pred_mask_logits: (B, C, Hmask, Wmask), C = number of classes or 1; B is the total
            number of instances over the images, in the order of ``pred_instances``.
        pred_instances: per image, Instances with ``pred_classes``; updated in place with
            ``pred_masks`` of shape (Bi, 1, Hmask, Wmask).
    """
    cls_agnostic_mask = pred_mask_logits.size(1) == 1

    if cls_agnostic_mask:
        mask_probs_pred = pred_mask_logits.sigmoid()
    else:
        num_masks = pred_mask_logits.shape[0]
        class_pred = cat([i.pred_classes for i in pred_instances])
        # arange on the CPU then moved like the classes: no device constant in a traced graph
        indices = move_device_like(torch.arange(num_masks, device=torch.device("cpu")), class_pred)
        mask_probs_pred = pred_mask_logits[indices, class_pred][:, None].sigmoid()
    # mask_probs_pred: (B, 1, Hmask, Wmask)

    num_boxes_per_image = [len(i) for i in pred_instances]
    mask_probs_pred = mask_probs_pred.split(num_boxes_per_image, dim=0)

    for prob, instances in zip(mask_probs_pred, pred_instances):
        instances.pred_masks = prob  # (Bi, 1, Hmask, Wmask)


class BaseMaskRCNNHead(nn.Module):
    """A mask head: ``layers`` maps region features to mask logits, then
    :func:`mask_rcnn_inference` stores the probabilities in the instances."""

    @configurable
    def __init__(self, *, loss_weight: float = 1.0, vis_period: int = 0):
        """
        Args:
            loss_weight, vis_period: training only; stored, unused.
        """
        super().__init__()
        self.vis_period = vis_period
        self.loss_weight = loss_weight

    @classmethod
    def from_config(cls, cfg, input_shape):
        return {"vis_period": cfg.VIS_PERIOD}

    def forward(self, x, instances: List[Instances]):
        """
        Args:
            x: region features (or a dict of feature maps, for heads without a pooler).
            instances: per image, the detections whose regions ``x`` describes, in order.

        Returns:
            list[Instances]: ``instances``, with ``pred_masks`` added.
        """
        if self.training:
            raise NotImplementedError(
                "BaseMaskRCNNHead: training=True, expected eval mode "
                "(detectron2_export is inference-only)"
            )
        x = self.layers(x)
        mask_rcnn_inference(x, instances)
        return instances

    def layers(self, x):
        """The neural network part: region features -> mask logits (B, C, Hmask, Wmask)."""
        raise NotImplementedError


@ROI_MASK_HEAD_REGISTRY.register()
class MaskRCNNConvUpsampleHead(BaseMaskRCNNHead, nn.Sequential):
    """The Mask R-CNN head: 3x3 convs (``mask_fcn{k}``), a stride-2 2x2 transposed conv
    (``deconv``) + ReLU, and a 1x1 conv (``predictor``) giving one logit map per class."""

    @configurable
    def __init__(self, input_shape: ShapeSpec, *, num_classes, conv_dims, conv_norm="", **kwargs):
        """
        Args:
            input_shape: shape of the region features.
            num_classes: number of mask channels (1 for a class-agnostic head).
            conv_dims: channels of the 3x3 convs, followed by the channels of the deconv.
            conv_norm: normalization after each 3x3 conv; "" for none.
            kwargs: passed to :class:`BaseMaskRCNNHead`.
        """
        super().__init__(**kwargs)
        assert len(conv_dims) >= 1, "conv_dims have to be non-empty!"

        self.conv_norm_relus = []

        cur_channels = input_shape.channels
        for k, conv_dim in enumerate(conv_dims[:-1]):
            conv = Conv2d(
                cur_channels,
                conv_dim,
                kernel_size=3,
                stride=1,
                padding=1,
                bias=not conv_norm,
                norm=get_norm(conv_norm, conv_dim),
                activation=nn.ReLU(),
            )
            self.add_module("mask_fcn{}".format(k + 1), conv)
            self.conv_norm_relus.append(conv)
            cur_channels = conv_dim
        self.deconv = ConvTranspose2d(
            cur_channels, conv_dims[-1], kernel_size=2, stride=2, padding=0
        )
        self.add_module("deconv_relu", nn.ReLU())
        cur_channels = conv_dims[-1]

        self.predictor = Conv2d(cur_channels, num_classes, kernel_size=1, stride=1, padding=0)

        for layer in self.conv_norm_relus + [self.deconv]:
            c2_msra_fill(layer)
        # the predictor starts small, as in detectron2
        nn.init.normal_(self.predictor.weight, std=0.001)
        if self.predictor.bias is not None:
            nn.init.constant_(self.predictor.bias, 0)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        conv_dim = cfg.MODEL.ROI_MASK_HEAD.CONV_DIM
        num_conv = cfg.MODEL.ROI_MASK_HEAD.NUM_CONV
        ret.update(
            conv_dims=[conv_dim] * (num_conv + 1),  # +1 for the deconv
            conv_norm=cfg.MODEL.ROI_MASK_HEAD.NORM,
            input_shape=input_shape,
        )
        if cfg.MODEL.ROI_MASK_HEAD.CLS_AGNOSTIC_MASK:
            ret["num_classes"] = 1
        else:
            ret["num_classes"] = cfg.MODEL.ROI_HEADS.NUM_CLASSES
        return ret

    def layers(self, x):
        for layer in self:
            x = layer(x)
        return x


def build_mask_head(cfg, input_shape):
    """Build the mask head named by ``cfg.MODEL.ROI_MASK_HEAD.NAME``."""
    name = cfg.MODEL.ROI_MASK_HEAD.NAME
    return ROI_MASK_HEAD_REGISTRY.get(name)(cfg, input_shape)
