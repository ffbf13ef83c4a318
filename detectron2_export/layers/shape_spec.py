"""ShapeSpec: what a module tells its consumers about a feature map (detectron2.layers.shape_spec)."""

from dataclasses import dataclass
from typing import Optional


@dataclass
class ShapeSpec:
    """Shape of a tensor, used as the input/output spec of backbones and heads.

    Every field is optional because a module often knows only some of them (e.g. only channels).
    """

    channels: Optional[int] = None
    height: Optional[int] = None
    width: Optional[int] = None
    stride: Optional[int] = None
