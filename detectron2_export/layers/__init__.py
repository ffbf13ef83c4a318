"""detectron2.layers: building blocks shared by backbones and heads."""

from .aspp import ASPP
from .batch_norm import CycleBatchNormList, FrozenBatchNorm2d, LayerNorm, NaiveSyncBatchNorm, get_norm
from .blocks import CNNBlockBase, DepthwiseSeparableConv2d
from .deform_conv import DeformConv, ModulatedDeformConv
from .losses import ciou_loss, diou_loss
from .mask_ops import paste_masks_in_image
from .nms import batched_nms, batched_nms_rotated, nms, nms_rotated
from .roi_align import ROIAlign, roi_align
from .roi_align_rotated import ROIAlignRotated, roi_align_rotated
from .rotated_boxes import pairwise_iou_rotated
from .shape_spec import ShapeSpec
from .wrappers import (
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Linear,
    cat,
    cross_entropy,
    empty_input_loss_func_wrapper,
    interpolate,
    move_device_like,
    nonzero_tuple,
    shapes_to_tensor,
)

__all__ = [
    "ASPP",
    "BatchNorm2d",
    "CNNBlockBase",
    "CycleBatchNormList",
    "Conv2d",
    "ConvTranspose2d",
    "DeformConv",
    "DepthwiseSeparableConv2d",
    "FrozenBatchNorm2d",
    "LayerNorm",
    "Linear",
    "ModulatedDeformConv",
    "NaiveSyncBatchNorm",
    "ROIAlign",
    "ROIAlignRotated",
    "ShapeSpec",
    "batched_nms",
    "batched_nms_rotated",
    "cat",
    "ciou_loss",
    "cross_entropy",
    "diou_loss",
    "empty_input_loss_func_wrapper",
    "get_norm",
    "interpolate",
    "move_device_like",
    "nms",
    "nms_rotated",
    "nonzero_tuple",
    "pairwise_iou_rotated",
    "paste_masks_in_image",
    "roi_align",
    "roi_align_rotated",
    "shapes_to_tensor",
]
