"""Box <-> delta transforms (detectron2.modeling.box_regression).

Boxes are XYXY. Deltas follow the R-CNN parametrisation: centre shifts relative to the source
box size and log-scale size ratios, each multiplied by a per-coordinate weight.
"""

from __future__ import annotations

import math
from typing import Tuple

import torch

from ..utils.training_only import lazy_fvcore_nn, training_only_function

__all__ = ["Box2BoxTransform", "Box2BoxTransformRotated", "Box2BoxTransformLinear"]

# The box regression loss of the dense detectors (RetinaNet, FCOS): training only.
_dense_box_regression_loss = training_only_function(__name__, "_dense_box_regression_loss")

# detectron2 imports fvcore's giou_loss and smooth_l1_loss into this module
__getattr__ = lazy_fvcore_nn(__name__, ("giou_loss", "smooth_l1_loss"))

_DEFAULT_SCALE_CLAMP = math.log(1000.0 / 16)
"""Largest dw/dh fed to exp(): a box can grow at most 1000/16 = 62.5 times."""


class Box2BoxTransform:
    """Encodes a target box relative to a source box as (dx, dy, dw, dh), and decodes it back.

    Args:
        weights: (wx, wy, ww, wh) multiplied into the deltas; e.g. (10, 10, 5, 5) in Fast R-CNN
            box heads, (1, 1, 1, 1) in RPN and RetinaNet.
        scale_clamp: dw and dh are clamped to this value before ``exp`` when decoding.
    """

    def __init__(self, weights: Tuple[float, float, float, float], scale_clamp: float = _DEFAULT_SCALE_CLAMP):
        self.weights = weights
        self.scale_clamp = scale_clamp

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) source and target boxes -> (N, 4) deltas such that ``apply_deltas`` inverts it."""
        assert isinstance(src_boxes, torch.Tensor), type(src_boxes)
        assert isinstance(target_boxes, torch.Tensor), type(target_boxes)

        src_widths = src_boxes[:, 2] - src_boxes[:, 0]
        src_heights = src_boxes[:, 3] - src_boxes[:, 1]
        src_ctr_x = src_boxes[:, 0] + 0.5 * src_widths
        src_ctr_y = src_boxes[:, 1] + 0.5 * src_heights

        target_widths = target_boxes[:, 2] - target_boxes[:, 0]
        target_heights = target_boxes[:, 3] - target_boxes[:, 1]
        target_ctr_x = target_boxes[:, 0] + 0.5 * target_widths
        target_ctr_y = target_boxes[:, 1] + 0.5 * target_heights

        wx, wy, ww, wh = self.weights
        dx = wx * (target_ctr_x - src_ctr_x) / src_widths
        dy = wy * (target_ctr_y - src_ctr_y) / src_heights
        dw = ww * torch.log(target_widths / src_widths)
        dh = wh * torch.log(target_heights / src_heights)

        deltas = torch.stack((dx, dy, dw, dh), dim=1)
        assert (src_widths > 0).all().item(), "Input boxes to Box2BoxTransform are not valid!"
        return deltas

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Decode (N, k*4) deltas against (N, 4) boxes into (N, k*4) boxes (k: classes, or 1).

        Computation is in float32 whatever the input dtype, for decoding precision.
        """
        deltas = deltas.float()
        boxes = boxes.to(deltas.dtype)

        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        ctr_x = boxes[:, 0] + 0.5 * widths
        ctr_y = boxes[:, 1] + 0.5 * heights

        wx, wy, ww, wh = self.weights
        dx = deltas[:, 0::4] / wx
        dy = deltas[:, 1::4] / wy
        dw = deltas[:, 2::4] / ww
        dh = deltas[:, 3::4] / wh

        # Keep exp() finite for wild predictions.
        dw = torch.clamp(dw, max=self.scale_clamp)
        dh = torch.clamp(dh, max=self.scale_clamp)

        pred_ctr_x = dx * widths[:, None] + ctr_x[:, None]
        pred_ctr_y = dy * heights[:, None] + ctr_y[:, None]
        pred_w = torch.exp(dw) * widths[:, None]
        pred_h = torch.exp(dh) * heights[:, None]

        x1 = pred_ctr_x - 0.5 * pred_w
        y1 = pred_ctr_y - 0.5 * pred_h
        x2 = pred_ctr_x + 0.5 * pred_w
        y2 = pred_ctr_y + 0.5 * pred_h
        pred_boxes = torch.stack((x1, y1, x2, y2), dim=-1)
        return pred_boxes.reshape(deltas.shape)


def _wrap_degrees(angles: torch.Tensor) -> torch.Tensor:
    """Map angles in degrees into [-180, 180)."""
    return (angles + 180.0) % 360.0 - 180.0


class Box2BoxTransformRotated:
    """The rotated-box version of :class:`Box2BoxTransform`: boxes are (x_ctr, y_ctr, w, h, angle).

    Box angles are in degrees (counter-clockwise); the angle delta is in radians times ``wa``, as
    in the original RRPN.

    Args:
        weights: (wx, wy, ww, wh, wa).
        scale_clamp: dw and dh are clamped to this value before ``exp`` when decoding.
    """

    def __init__(
        self,
        weights: Tuple[float, float, float, float, float],
        scale_clamp: float = _DEFAULT_SCALE_CLAMP,
    ):
        self.weights = weights
        self.scale_clamp = scale_clamp

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """(N, 5) source and target boxes -> (N, 5) deltas (dx, dy, dw, dh, da)."""
        assert isinstance(src_boxes, torch.Tensor), type(src_boxes)
        assert isinstance(target_boxes, torch.Tensor), type(target_boxes)
        src_ctr_x, src_ctr_y, src_widths, src_heights, src_angles = torch.unbind(src_boxes, dim=1)
        target_ctr_x, target_ctr_y, target_widths, target_heights, target_angles = torch.unbind(
            target_boxes, dim=1
        )

        wx, wy, ww, wh, wa = self.weights
        dx = wx * (target_ctr_x - src_ctr_x) / src_widths
        dy = wy * (target_ctr_y - src_ctr_y) / src_heights
        dw = ww * torch.log(target_widths / src_widths)
        dh = wh * torch.log(target_heights / src_heights)
        da = _wrap_degrees(target_angles - src_angles) * (wa * math.pi / 180.0)

        deltas = torch.stack((dx, dy, dw, dh, da), dim=1)
        assert (src_widths > 0).all().item(), "Input boxes to Box2BoxTransformRotated are not valid!"
        return deltas

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Decode (N, k*5) deltas against (N, 5) boxes into (N, k*5) boxes, angles in [-180, 180)."""
        assert deltas.shape[1] % 5 == 0 and boxes.shape[1] == 5
        boxes = boxes.to(deltas.dtype).unsqueeze(2)

        ctr_x = boxes[:, 0]
        ctr_y = boxes[:, 1]
        widths = boxes[:, 2]
        heights = boxes[:, 3]
        angles = boxes[:, 4]

        wx, wy, ww, wh, wa = self.weights
        dx = deltas[:, 0::5] / wx
        dy = deltas[:, 1::5] / wy
        dw = torch.clamp(deltas[:, 2::5] / ww, max=self.scale_clamp)
        dh = torch.clamp(deltas[:, 3::5] / wh, max=self.scale_clamp)
        da = deltas[:, 4::5] / wa

        pred_boxes = torch.zeros_like(deltas)
        pred_boxes[:, 0::5] = dx * widths + ctr_x
        pred_boxes[:, 1::5] = dy * heights + ctr_y
        pred_boxes[:, 2::5] = torch.exp(dw) * widths
        pred_boxes[:, 3::5] = torch.exp(dh) * heights
        pred_boxes[:, 4::5] = _wrap_degrees(da * 180.0 / math.pi + angles)
        return pred_boxes


class Box2BoxTransformLinear:
    """FCOS's box parametrisation: the distances (l, t, r, b) from the centre of a (square)
    source box, e.g. an anchor point, to the four sides of the target box.

    Args:
        normalize_by_size: deltas are in units of the source box's size (the anchor stride).
    """

    def __init__(self, normalize_by_size: bool = True):
        self.normalize_by_size = normalize_by_size

    def _sizes(self, boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) source boxes -> (N, 4) (w, h, w, h), the unit of each delta."""
        widths = boxes[:, 2] - boxes[:, 0]
        heights = boxes[:, 3] - boxes[:, 1]
        return torch.stack([widths, heights, widths, heights], dim=1)

    def get_deltas(self, src_boxes: torch.Tensor, target_boxes: torch.Tensor) -> torch.Tensor:
        """(N, 4) source and target boxes -> (N, 4) deltas (l, t, r, b); the source centres must
        lie inside the targets for the deltas to be positive."""
        assert isinstance(src_boxes, torch.Tensor), type(src_boxes)
        assert isinstance(target_boxes, torch.Tensor), type(target_boxes)
        src_ctr_x = 0.5 * (src_boxes[:, 0] + src_boxes[:, 2])
        src_ctr_y = 0.5 * (src_boxes[:, 1] + src_boxes[:, 3])
        deltas = torch.stack(
            (
                src_ctr_x - target_boxes[:, 0],
                src_ctr_y - target_boxes[:, 1],
                target_boxes[:, 2] - src_ctr_x,
                target_boxes[:, 3] - src_ctr_y,
            ),
            dim=1,
        )
        if self.normalize_by_size:
            deltas = deltas / self._sizes(src_boxes)
        return deltas

    def apply_deltas(self, deltas: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """Decode (N, k*4) deltas against (N, 4) boxes into (N, k*4) boxes.

        Negative distances are clamped to 0 first, so every box contains its source centre.
        """
        deltas = torch.relu(deltas)
        boxes = boxes.to(deltas.dtype)
        ctr_x = 0.5 * (boxes[:, 0] + boxes[:, 2])
        ctr_y = 0.5 * (boxes[:, 1] + boxes[:, 3])
        if self.normalize_by_size:
            deltas = deltas * self._sizes(boxes).repeat(1, deltas.shape[1] // 4)
        x1 = ctr_x[:, None] - deltas[:, 0::4]
        y1 = ctr_y[:, None] - deltas[:, 1::4]
        x2 = ctr_x[:, None] + deltas[:, 2::4]
        y2 = ctr_y[:, None] + deltas[:, 3::4]
        return torch.stack((x1, y1, x2, y2), dim=-1).reshape(deltas.shape)
