"""Semantic segmentation (detectron2.modeling.meta_arch.semantic_seg): SemanticSegmentor, SemSegFPNHead."""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...config.configurable import configurable
from ...layers import Conv2d, ShapeSpec, get_norm
from ...utils.registry import Registry
from ..backbone import Backbone, build_backbone
from ..postprocessing import sem_seg_postprocess
from ..weight_init import c2_msra_fill
from .build import META_ARCH_REGISTRY
from .image_io import check_inference_mode, normalize_and_batch, register_pixel_stats

__all__ = ["SemanticSegmentor", "SEM_SEG_HEADS_REGISTRY", "SemSegFPNHead", "build_sem_seg_head"]

SEM_SEG_HEADS_REGISTRY = Registry("SEM_SEG_HEADS")
SEM_SEG_HEADS_REGISTRY.__doc__ = """
Registry for semantic segmentation heads, which make segmentation predictions from feature maps.

A registered object is called as ``obj(cfg, input_shape)`` with ``input_shape`` the backbone's
``dict[str, ShapeSpec]``.
"""


@META_ARCH_REGISTRY.register()
class SemanticSegmentor(nn.Module):
    """A backbone and a semantic segmentation head."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        sem_seg_head: nn.Module,
        pixel_mean: Tuple[float, ...],
        pixel_std: Tuple[float, ...],
    ):
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        register_pixel_stats(self, pixel_mean, pixel_std)

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        sem_seg_head = build_sem_seg_head(cfg, backbone.output_shape())
        return {
            "backbone": backbone,
            "sem_seg_head": sem_seg_head,
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
        }

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, Tensor]]) -> List[Dict[str, Tensor]]:
        """One ``{"sem_seg": (num_classes, height, width) logits}`` per input image.

        Inputs as :meth:`GeneralizedRCNN.forward`; logits are at each input's "height"/"width".
        """
        check_inference_mode(self.training, "SemanticSegmentor")
        images = normalize_and_batch(
            batched_inputs,
            self.pixel_mean,
            self.pixel_std,
            self.backbone.size_divisibility,
            self.backbone.padding_constraints,
        )
        features = self.backbone(images.tensor)
        results, _ = self.sem_seg_head(features, None)

        processed_results = []
        for result, input_per_image, image_size in zip(results, batched_inputs, images.image_sizes):
            height = input_per_image.get("height", image_size[0])
            width = input_per_image.get("width", image_size[1])
            r = sem_seg_postprocess(result, image_size, height, width)
            processed_results.append({"sem_seg": r})
        return processed_results


def build_sem_seg_head(cfg, input_shape: Dict[str, ShapeSpec]) -> nn.Module:
    """Build the head named by ``cfg.MODEL.SEM_SEG_HEAD.NAME``."""
    name = cfg.MODEL.SEM_SEG_HEAD.NAME
    return SEM_SEG_HEADS_REGISTRY.get(name)(cfg, input_shape)


@SEM_SEG_HEADS_REGISTRY.register()
class SemSegFPNHead(nn.Module):
    """The semantic branch of Panoptic FPN.

    Every input level goes through a "scale head" of 3x3 conv + ReLU (+ 2x bilinear upsampling)
    stages until it reaches ``common_stride``; the sum goes through a 1x1 ``predictor``; the
    logits are upsampled by ``common_stride`` to the input resolution. Scale heads are registered
    under the feature names (``p2.0.weight`` ...), as in detectron2's checkpoints.

    Args:
        input_shape: shapes of the input features.
        num_classes: number of classes to predict.
        conv_dims: channels of the scale-head convs.
        common_stride: stride the scale heads bring every level to.
        loss_weight, ignore_value: training only.
        norm: normalisation of the scale-head convs ("" or None for none).
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        num_classes: int,
        conv_dims: int,
        common_stride: int,
        loss_weight: float = 1.0,
        norm: Optional[Union[str, Callable]] = None,
        ignore_value: int = -1,
    ):
        super().__init__()
        sorted_shapes = sorted(input_shape.items(), key=lambda x: x[1].stride)
        if not len(sorted_shapes):
            raise ValueError("SemSegFPNHead(input_shape=) cannot be empty!")
        self.in_features = [k for k, v in sorted_shapes]
        feature_strides = [v.stride for k, v in sorted_shapes]
        feature_channels = [v.channels for k, v in sorted_shapes]

        self.ignore_value = ignore_value
        self.common_stride = common_stride
        self.loss_weight = loss_weight

        self.scale_heads = []
        for in_feature, stride, channels in zip(self.in_features, feature_strides, feature_channels):
            head = _scale_head(channels, conv_dims, stride, common_stride, norm)
            self.scale_heads.append(head)
            self.add_module(in_feature, head)
        self.predictor = Conv2d(conv_dims, num_classes, kernel_size=1, stride=1, padding=0)
        c2_msra_fill(self.predictor)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        return {
            "input_shape": {k: v for k, v in input_shape.items() if k in cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES},
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "conv_dims": cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM,
            "common_stride": cfg.MODEL.SEM_SEG_HEAD.COMMON_STRIDE,
            "norm": cfg.MODEL.SEM_SEG_HEAD.NORM,
            "loss_weight": cfg.MODEL.SEM_SEG_HEAD.LOSS_WEIGHT,
        }

    def forward(
        self, features: Dict[str, Tensor], targets: Optional[Tensor] = None
    ) -> Tuple[Tensor, Dict[str, Tensor]]:
        """(N, num_classes, H, W) logits at the input resolution, and an empty loss dict."""
        check_inference_mode(self.training, "SemSegFPNHead")
        x = self.layers(features)
        x = F.interpolate(x, scale_factor=self.common_stride, mode="bilinear", align_corners=False)
        return x, {}

    def layers(self, features: Dict[str, Tensor]) -> Tensor:
        """Sum of the scale heads' outputs, through the predictor: logits at ``common_stride``."""
        for i, f in enumerate(self.in_features):
            if i == 0:
                x = self.scale_heads[i](features[f])
            else:
                x = x + self.scale_heads[i](features[f])
        return self.predictor(x)


def _scale_head(in_channels: int, conv_dims: int, stride: int, common_stride: int, norm) -> nn.Sequential:
    """log2(stride / common_stride) conv stages (at least one), each upsampling 2x if needed."""
    head_ops: List[nn.Module] = []
    head_length = max(1, int(np.log2(stride) - np.log2(common_stride)))
    for k in range(head_length):
        conv = Conv2d(
            in_channels if k == 0 else conv_dims,
            conv_dims,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=not norm,
            norm=get_norm(norm, conv_dims),
            activation=F.relu,
        )
        c2_msra_fill(conv)
        head_ops.append(conv)
        if stride != common_stride:
            head_ops.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
    return nn.Sequential(*head_ops)
