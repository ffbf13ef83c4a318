"""The backbone registry and ``build_backbone`` (detectron2.modeling.backbone.build)."""

from __future__ import annotations

from typing import Optional

from ...layers import ShapeSpec
from ...utils.registry import Registry
from .backbone import Backbone

__all__ = ["BACKBONE_REGISTRY", "build_backbone"]

BACKBONE_REGISTRY = Registry("BACKBONE")
BACKBONE_REGISTRY.__doc__ = """
Registry for backbones, which extract feature maps from images.

A registered object is called as ``obj(cfg, input_shape)`` where ``input_shape`` is a
:class:`ShapeSpec` of the input image, and must return a :class:`Backbone` instance.
"""


def build_backbone(cfg, input_shape: Optional[ShapeSpec] = None) -> Backbone:
    """Build the backbone named by ``cfg.MODEL.BACKBONE.NAME``.

    The input has ``len(cfg.MODEL.PIXEL_MEAN)`` channels unless ``input_shape`` says otherwise.
    """
    if input_shape is None:
        input_shape = ShapeSpec(channels=len(cfg.MODEL.PIXEL_MEAN))
    backbone_name = cfg.MODEL.BACKBONE.NAME
    backbone = BACKBONE_REGISTRY.get(backbone_name)(cfg, input_shape)
    if not isinstance(backbone, Backbone):
        raise TypeError(
            f"build_backbone: MODEL.BACKBONE.NAME={backbone_name!r} returned "
            f"{type(backbone).__name__}, expected a Backbone instance"
        )
    return backbone
