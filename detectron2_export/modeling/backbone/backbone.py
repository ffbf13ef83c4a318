"""The interface every backbone implements (detectron2.modeling.backbone.backbone)."""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Dict

from torch import nn

from ...layers import ShapeSpec

__all__ = ["Backbone"]


class Backbone(nn.Module, metaclass=ABCMeta):
    """A network that maps an (N, C, H, W) image batch to a dict of named feature maps.

    Subclasses fill ``_out_features`` (names, in output order), ``_out_feature_channels`` and
    ``_out_feature_strides`` (per name) so that heads can be built from :meth:`output_shape`.
    """

    def __init__(self) -> None:
        super().__init__()

    @abstractmethod
    def forward(self, *args, **kwargs):
        """Return ``dict[str, Tensor]``: feature name -> feature map."""

    @property
    def size_divisibility(self) -> int:
        """Input height and width must be multiples of this (0: no constraint).

        Meta-architectures pad their image batch to it; FPN needs it because its top-down path
        upsamples by 2 and adds to the next level, which only lines up for divisible sizes.
        """
        return 0

    @property
    def padding_constraints(self) -> Dict[str, int]:
        """Extra padding requirements for ``ImageList.from_tensors``.

        Keys: ``"size_divisibility"`` (overrides :attr:`size_divisibility` when present) and
        ``"square_size"`` (pad to a fixed square). Empty for the backbones of this package.
        """
        return {}

    def output_shape(self) -> Dict[str, ShapeSpec]:
        """Channels and stride of each output feature map."""
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
