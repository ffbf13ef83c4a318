"""Keypoint heads of Keypoint R-CNN (detectron2.modeling.roi_heads.keypoint_head, v0.6).

Heads call :func:`keypoint_rcnn_inference` through this module's globals, so that the Caffe2
export can replace it; ``len`` is looked up the same way so the TorchScript export can keep
instance counts symbolic while tracing.
"""

from typing import List

import torch
from torch import nn

from detectron2_export.config import configurable
from detectron2_export.layers import Conv2d, ConvTranspose2d, cat, interpolate
from detectron2_export.structures import Instances, heatmaps_to_keypoints
from detectron2_export.utils.registry import Registry
from detectron2_export.utils.training_only import training_only_function

__all__ = [
    "ROI_KEYPOINT_HEAD_REGISTRY",
    "build_keypoint_head",
    "BaseKeypointRCNNHead",
    "KRCNNConvDeconvUpsampleHead",
    "keypoint_rcnn_inference",
    "keypoint_rcnn_loss",
]

keypoint_rcnn_loss = training_only_function(__name__, "keypoint_rcnn_loss")

ROI_KEYPOINT_HEAD_REGISTRY = Registry("ROI_KEYPOINT_HEAD")
ROI_KEYPOINT_HEAD_REGISTRY.__doc__ = """
Registry for keypoint heads, which make keypoint predictions from per-region features.

The registered object will be called with `obj(cfg, input_shape)`.
"""


def build_keypoint_head(cfg, input_shape):
    """Build the keypoint head named by ``cfg.MODEL.ROI_KEYPOINT_HEAD.NAME``."""
    name = cfg.MODEL.ROI_KEYPOINT_HEAD.NAME
    return ROI_KEYPOINT_HEAD_REGISTRY.get(name)(cfg, input_shape)


def keypoint_rcnn_inference(pred_keypoint_logits: torch.Tensor, pred_instances: List[Instances]):
    """Decode keypoint heatmaps into image coordinates, stored in the instances.

    Args:
        pred_keypoint_logits: (R, K, S, S) heatmap logits, K keypoints; R is the total number of
            instances over the images, in the order of ``pred_instances``.
        pred_instances: per image, Instances with ``pred_boxes``; updated in place with
            ``pred_keypoints`` (Ri, K, 3) = (x, y, score) in image pixels, and
            ``pred_keypoint_heatmaps`` (Ri, K, S, S), the logits.
    """
    bboxes_flat = cat([b.pred_boxes.tensor for b in pred_instances], dim=0)

    pred_keypoint_logits = pred_keypoint_logits.detach()
    keypoint_results = heatmaps_to_keypoints(pred_keypoint_logits, bboxes_flat.detach())
    num_instances_per_image = [len(i) for i in pred_instances]
    # heatmaps_to_keypoints gives (x, y, logit, score); keep x, y and the score
    keypoint_results = keypoint_results[:, :, [0, 1, 3]].split(num_instances_per_image, dim=0)
    heatmap_results = pred_keypoint_logits.split(num_instances_per_image, dim=0)

    for keypoint_results_per_image, heatmap_results_per_image, instances_per_image in zip(
        keypoint_results, heatmap_results, pred_instances
    ):
        instances_per_image.pred_keypoints = keypoint_results_per_image
        instances_per_image.pred_keypoint_heatmaps = heatmap_results_per_image


class BaseKeypointRCNNHead(nn.Module):
    """A keypoint head: ``layers`` maps region features to heatmap logits, then
    :func:`keypoint_rcnn_inference` decodes them into the instances."""

    @configurable
    def __init__(self, *, num_keypoints, loss_weight=1.0, loss_normalizer=1.0):
        """
        Args:
            num_keypoints: number of keypoints K.
            loss_weight, loss_normalizer: training only; stored, unused.
        """
        super().__init__()
        self.num_keypoints = num_keypoints
        self.loss_weight = loss_weight
        assert loss_normalizer == "visible" or isinstance(loss_normalizer, float), loss_normalizer
        self.loss_normalizer = loss_normalizer

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = {
            "loss_weight": cfg.MODEL.ROI_KEYPOINT_HEAD.LOSS_WEIGHT,
            "num_keypoints": cfg.MODEL.ROI_KEYPOINT_HEAD.NUM_KEYPOINTS,
        }
        normalize_by_visible = cfg.MODEL.ROI_KEYPOINT_HEAD.NORMALIZE_LOSS_BY_VISIBLE_KEYPOINTS
        if not normalize_by_visible:
            batch_size_per_image = cfg.MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE
            positive_sample_fraction = cfg.MODEL.ROI_HEADS.POSITIVE_FRACTION
            ret["loss_normalizer"] = (
                ret["num_keypoints"] * batch_size_per_image * positive_sample_fraction
            )
        else:
            ret["loss_normalizer"] = "visible"
        return ret

    def forward(self, x, instances: List[Instances]):
        """
        Args:
            x: region features (or a dict of feature maps, for heads without a pooler).
            instances: per image, the detections whose regions ``x`` describes, in order.

        Returns:
            list[Instances]: ``instances``, with ``pred_keypoints`` and ``pred_keypoint_heatmaps``.
        """
        if self.training:
            raise NotImplementedError(
                "BaseKeypointRCNNHead: training=True, expected eval mode "
                "(detectron2_export is inference-only)"
            )
        x = self.layers(x)
        keypoint_rcnn_inference(x, instances)
        return instances

    def layers(self, x):
        """The neural network part: region features -> heatmap logits (R, K, S, S)."""
        raise NotImplementedError


@ROI_KEYPOINT_HEAD_REGISTRY.register()
class KRCNNConvDeconvUpsampleHead(BaseKeypointRCNNHead, nn.Sequential):
    """The Keypoint R-CNN head: 3x3 convs + ReLU (``conv_fcn{k}``), a stride-2 4x4 transposed
    conv (``score_lowres``) and a x2 bilinear upsampling: 14x14 regions -> 56x56 heatmaps."""

    @configurable
    def __init__(self, input_shape, *, num_keypoints, conv_dims, **kwargs):
        """
        Args:
            input_shape (ShapeSpec): shape of the region features.
            num_keypoints: number of keypoints K.
            conv_dims: output channels of the 3x3 convs.
            kwargs: passed to :class:`BaseKeypointRCNNHead`.
        """
        super().__init__(num_keypoints=num_keypoints, **kwargs)

        # fixed at 2, as in detectron2
        up_scale = 2.0
        in_channels = input_shape.channels

        for idx, layer_channels in enumerate(conv_dims, 1):
            module = Conv2d(in_channels, layer_channels, 3, stride=1, padding=1)
            self.add_module("conv_fcn{}".format(idx), module)
            self.add_module("conv_fcn_relu{}".format(idx), nn.ReLU())
            in_channels = layer_channels

        deconv_kernel = 4
        self.score_lowres = ConvTranspose2d(
            in_channels, num_keypoints, deconv_kernel, stride=2, padding=deconv_kernel // 2 - 1
        )
        self.up_scale = up_scale

        for name, param in self.named_parameters():
            if "bias" in name:
                nn.init.constant_(param, 0)
            elif "weight" in name:
                # Caffe2's MSRAFill is kaiming_normal_ with fan_out
                nn.init.kaiming_normal_(param, mode="fan_out", nonlinearity="relu")

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["input_shape"] = input_shape
        ret["conv_dims"] = cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS
        return ret

    def layers(self, x):
        for layer in self:
            x = layer(x)
        x = interpolate(x, scale_factor=self.up_scale, mode="bilinear", align_corners=False)
        return x
