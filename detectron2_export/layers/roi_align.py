"""RoIAlign (detectron2.layers.roi_align), backed by torchvision's kernel.

``aligned=True`` shifts the box by -0.5 pixel so that a box's continuous coordinates map to pixel
centres correctly (detectron2's ROIAlignV2); ``aligned=False`` is the legacy Detectron behaviour.
"""

from typing import Tuple, Union

import torch
from torch import nn
from torchvision.ops import roi_align

__all__ = ["ROIAlign", "roi_align"]


class ROIAlign(nn.Module):
    """Pool each (batch_index, x0, y0, x1, y1) box of ``rois`` to a fixed ``output_size`` grid.

    Args:
        output_size: (h, w) of the pooled output, or one int for a square.
        spatial_scale: multiplies the box coordinates to get feature-map coordinates
            (1 / stride of the feature map).
        sampling_ratio: samples per bin along each axis; <= 0 picks ceil(roi_size / output_size).
        aligned: apply the half-pixel offset (see module docstring).
    """

    def __init__(
        self,
        output_size: Union[int, Tuple[int, int]],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool = True,
    ):
        super().__init__()
        self.output_size = output_size
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(self, input: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """input (N, C, H, W); rois (R, 5) -> (R, C, output_h, output_w)."""
        assert rois.dim() == 2 and rois.size(1) == 5
        if input.is_quantized:
            input = input.dequantize()
        return roi_align(
            input,
            rois.to(dtype=input.dtype),
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.aligned,
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(output_size={self.output_size}, "
            f"spatial_scale={self.spatial_scale}, sampling_ratio={self.sampling_ratio}, "
            f"aligned={self.aligned})"
        )
