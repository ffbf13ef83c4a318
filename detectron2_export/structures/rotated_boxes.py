"""Rotated boxes (detectron2.structures.rotated_boxes).

A rotated box is (x_center, y_center, width, height, angle) with the angle in degrees,
counter-clockwise, in image coordinates (y pointing down). angle = 0 is an upright box.
"""

import math
from typing import List, Tuple

import torch

from ..layers.rotated_boxes import pairwise_iou_rotated
from .boxes import Boxes

__all__ = ["RotatedBoxes", "pairwise_iou"]


class RotatedBoxes(Boxes):
    """N rotated boxes: a float32 (N, 5) tensor of (xc, yc, w, h, angle_degrees)."""

    def __init__(self, tensor: torch.Tensor):
        device = tensor.device if isinstance(tensor, torch.Tensor) else torch.device("cpu")
        tensor = torch.as_tensor(tensor, dtype=torch.float32, device=device)
        if tensor.numel() == 0:
            # reshape (not a new tensor) keeps the dependency on the input for tracing
            tensor = tensor.reshape((0, 5)).to(dtype=torch.float32, device=device)
        assert tensor.dim() == 2 and tensor.size(-1) == 5, tensor.size()
        self.tensor = tensor

    def clone(self) -> "RotatedBoxes":
        return RotatedBoxes(self.tensor.clone())

    def to(self, device: torch.device) -> "RotatedBoxes":
        return RotatedBoxes(self.tensor.to(device=device))

    def area(self) -> torch.Tensor:
        """(N,) areas w * h (rotation preserves area)."""
        box = self.tensor
        return box[:, 2] * box[:, 3]

    def normalize_angles(self) -> None:
        """Bring angles into [-180, 180) in place."""
        self.tensor[:, 4] = (self.tensor[:, 4] + 180.0) % 360.0 - 180.0

    def clip(self, box_size: Tuple[int, int], clip_angle_threshold: float = 1.0) -> None:
        """Clip nearly-upright boxes (|angle| <= threshold degrees) to the image, in place.

        Those boxes are treated as upright: converted to XYXY, clamped to (height, width) =
        ``box_size`` and converted back; width/height never grow. Other boxes are unchanged,
        because clipping a rotated box does not give a rotated box. Angles are normalized first.
        """
        h, w = box_size
        self.normalize_angles()
        idx = torch.where(torch.abs(self.tensor[:, 4]) <= clip_angle_threshold)[0]

        x1 = self.tensor[idx, 0] - self.tensor[idx, 2] / 2.0
        y1 = self.tensor[idx, 1] - self.tensor[idx, 3] / 2.0
        x2 = self.tensor[idx, 0] + self.tensor[idx, 2] / 2.0
        y2 = self.tensor[idx, 1] + self.tensor[idx, 3] / 2.0

        x1.clamp_(min=0, max=w)
        y1.clamp_(min=0, max=h)
        x2.clamp_(min=0, max=w)
        y2.clamp_(min=0, max=h)

        self.tensor[idx, 0] = (x1 + x2) / 2.0
        self.tensor[idx, 1] = (y1 + y2) / 2.0
        # min(): rounding must not make a clipped box larger than it was
        self.tensor[idx, 2] = torch.min(self.tensor[idx, 2], x2 - x1)
        self.tensor[idx, 3] = torch.min(self.tensor[idx, 3], y2 - y1)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """(N,) bool: boxes whose width and height are both > ``threshold``."""
        box = self.tensor
        return (box[:, 2] > threshold) & (box[:, 3] > threshold)

    def __getitem__(self, item) -> "RotatedBoxes":
        if isinstance(item, int):
            return RotatedBoxes(self.tensor[item].view(1, -1))
        b = self.tensor[item]
        assert b.dim() == 2, "Indexing on RotatedBoxes with {} failed to return a matrix!".format(item)
        return RotatedBoxes(b)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return "RotatedBoxes(" + str(self.tensor) + ")"

    def inside_box(self, box_size: Tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """(N,) bool: boxes whose upright bounding rectangle lies inside (height, width)."""
        height, width = box_size
        cnt_x = self.tensor[..., 0]
        cnt_y = self.tensor[..., 1]
        half_w = self.tensor[..., 2] / 2.0
        half_h = self.tensor[..., 3] / 2.0
        a = self.tensor[..., 4]
        c = torch.abs(torch.cos(a * math.pi / 180.0))
        s = torch.abs(torch.sin(a * math.pi / 180.0))
        max_rect_dx = c * half_w + s * half_h
        max_rect_dy = c * half_h + s * half_w
        return (
            (cnt_x - max_rect_dx >= -boundary_threshold)
            & (cnt_y - max_rect_dy >= -boundary_threshold)
            & (cnt_x + max_rect_dx < width + boundary_threshold)
            & (cnt_y + max_rect_dy < height + boundary_threshold)
        )

    def get_centers(self) -> torch.Tensor:
        """(N, 2) box centres (x, y)."""
        return self.tensor[:, :2]

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale the image by (scale_x, scale_y) and update the boxes in place.

        With a non-uniform scale a rotated rectangle becomes a parallelogram; like detectron2 we
        keep the rectangle spanned by the scaled mid-points of its left and top edges:
        w' = w * sqrt((sx cos)^2 + (sy sin)^2), h' = h * sqrt((sx sin)^2 + (sy cos)^2),
        angle' = atan2(sx sin, sy cos).
        """
        self.tensor[:, 0] *= scale_x
        self.tensor[:, 1] *= scale_y
        theta = self.tensor[:, 4] * math.pi / 180.0
        c = torch.cos(theta)
        s = torch.sin(theta)
        self.tensor[:, 2] *= torch.sqrt((scale_x * c) ** 2 + (scale_y * s) ** 2)
        self.tensor[:, 3] *= torch.sqrt((scale_x * s) ** 2 + (scale_y * c) ** 2)
        self.tensor[:, 4] = torch.atan2(scale_x * s, scale_y * c) * 180 / math.pi

    @classmethod
    def cat(cls, boxes_list: List["RotatedBoxes"]) -> "RotatedBoxes":
        """Concatenate RotatedBoxes into a new RotatedBoxes (no shared storage)."""
        assert isinstance(boxes_list, (list, tuple))
        if len(boxes_list) == 0:
            return cls(torch.empty(0))
        assert all(isinstance(box, RotatedBoxes) for box in boxes_list)
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))


def pairwise_iou(boxes1: RotatedBoxes, boxes2: RotatedBoxes) -> torch.Tensor:
    """(N, M) IoU between every pair of rotated boxes (exact polygon intersection)."""
    return pairwise_iou_rotated(boxes1.tensor, boxes2.tensor)
