"""Axis-aligned boxes (detectron2.structures.boxes): BoxMode, Boxes and pairwise IoU functions.

Boxes are float32 (N, 4) tensors in XYXY_ABS: (x0, y0, x1, y1) in absolute pixels, with
width = x1 - x0 (no +1, detectron2's ``legacy_plus_one=False``).
"""

import math
from enum import IntEnum, unique
from typing import List, Tuple, Union

import numpy as np
import torch

__all__ = [
    "BoxMode",
    "Boxes",
    "matched_pairwise_iou",
    "pairwise_intersection",
    "pairwise_ioa",
    "pairwise_iou",
    "pairwise_point_box_distance",
]

_RawBoxType = Union[List[float], Tuple[float, ...], torch.Tensor, np.ndarray]


@unique
class BoxMode(IntEnum):
    """How a box is represented: corners or corner+size, absolute or relative, upright or rotated."""

    XYXY_ABS = 0
    """(x0, y0, x1, y1) in absolute floating-point coordinates."""
    XYWH_ABS = 1
    """(x0, y0, w, h) in absolute floating-point coordinates."""
    XYXY_REL = 2
    """(x0, y0, x1, y1) relative to the image size (not supported by ``convert``)."""
    XYWH_REL = 3
    """(x0, y0, w, h) relative to the image size (not supported by ``convert``)."""
    XYWHA_ABS = 4
    """(xc, yc, w, h, a): centre, size and counter-clockwise rotation angle in degrees."""

    @staticmethod
    def convert(box: _RawBoxType, from_mode: "BoxMode", to_mode: "BoxMode") -> _RawBoxType:
        """Convert a box (list/tuple of 4 or 5 numbers) or an (N, 4|5) array/tensor between modes.

        The result has the input's type; the input is never modified.
        """
        if from_mode == to_mode:
            return box

        original_type = type(box)
        is_numpy = isinstance(box, np.ndarray)
        single_box = isinstance(box, (list, tuple))
        if single_box:
            assert len(box) == 4 or len(box) == 5, (
                "BoxMode.convert takes either a k-tuple/list or an Nxk array/tensor, where k == 4 or 5"
            )
            arr = torch.tensor(box)[None, :]
        elif is_numpy:
            arr = torch.from_numpy(np.asarray(box)).clone()
        else:
            arr = box.clone()

        assert to_mode not in (BoxMode.XYXY_REL, BoxMode.XYWH_REL) and from_mode not in (
            BoxMode.XYXY_REL,
            BoxMode.XYWH_REL,
        ), "Relative mode not yet supported!"

        if from_mode == BoxMode.XYWHA_ABS and to_mode == BoxMode.XYXY_ABS:
            assert arr.shape[-1] == 5, "The last dimension of input shape must be 5 for XYWHA format"
            original_dtype = arr.dtype
            arr = arr.double()
            w, h, a = arr[:, 2], arr[:, 3], arr[:, 4]
            c = torch.abs(torch.cos(a * math.pi / 180.0))
            s = torch.abs(torch.sin(a * math.pi / 180.0))
            # size of the upright rectangle enclosing the rotated box
            new_w = c * w + s * h
            new_h = c * h + s * w
            arr[:, 0] -= new_w / 2.0
            arr[:, 1] -= new_h / 2.0
            arr[:, 2] = arr[:, 0] + new_w
            arr[:, 3] = arr[:, 1] + new_h
            arr = arr[:, :4].to(dtype=original_dtype)
        elif from_mode == BoxMode.XYWH_ABS and to_mode == BoxMode.XYWHA_ABS:
            original_dtype = arr.dtype
            arr = arr.double()
            arr[:, 0] += arr[:, 2] / 2.0
            arr[:, 1] += arr[:, 3] / 2.0
            angles = torch.zeros((arr.shape[0], 1), dtype=arr.dtype)
            arr = torch.cat((arr, angles), dim=1).to(dtype=original_dtype)
        elif to_mode == BoxMode.XYXY_ABS and from_mode == BoxMode.XYWH_ABS:
            arr[:, 2] += arr[:, 0]
            arr[:, 3] += arr[:, 1]
        elif from_mode == BoxMode.XYXY_ABS and to_mode == BoxMode.XYWH_ABS:
            arr[:, 2] -= arr[:, 0]
            arr[:, 3] -= arr[:, 1]
        else:
            raise NotImplementedError(
                "Conversion from BoxMode {} to {} is not supported yet".format(from_mode, to_mode)
            )

        if single_box:
            return original_type(arr.flatten().tolist())
        if is_numpy:
            return arr.numpy()
        return arr


class Boxes:
    """A list of N boxes stored as a float32 (N, 4) tensor ``tensor`` in XYXY_ABS.

    Supports the operations detectron2's models use (area, clip, indexing, concatenation) without
    leaving the tensor world, so models using it can be traced.
    """

    def __init__(self, tensor: torch.Tensor):
        if not isinstance(tensor, torch.Tensor):
            tensor = torch.as_tensor(tensor, dtype=torch.float32, device=torch.device("cpu"))
        else:
            tensor = tensor.to(torch.float32)
        if tensor.numel() == 0:
            # reshape (not a new tensor) keeps the dependency on the input for tracing
            tensor = tensor.reshape((-1, 4)).to(dtype=torch.float32)
        assert tensor.dim() == 2 and tensor.size(-1) == 4, tensor.size()
        self.tensor = tensor

    def clone(self) -> "Boxes":
        return Boxes(self.tensor.clone())

    def to(self, device: torch.device) -> "Boxes":
        # Boxes are float32 by definition: only the device may change.
        return Boxes(self.tensor.to(device=device))

    def area(self) -> torch.Tensor:
        """(N,) areas, width * height."""
        box = self.tensor
        return (box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1])

    def clip(self, box_size: Tuple[int, int]) -> None:
        """Clamp x to [0, width] and y to [0, height] in place; ``box_size`` = (height, width).

        The sizes may be 0-dim tensors while tracing; clamp accepts both.
        """
        assert torch.isfinite(self.tensor).all(), "Box tensor contains infinite or NaN!"
        h, w = box_size
        x1 = self.tensor[:, 0].clamp(min=0, max=w)
        y1 = self.tensor[:, 1].clamp(min=0, max=h)
        x2 = self.tensor[:, 2].clamp(min=0, max=w)
        y2 = self.tensor[:, 3].clamp(min=0, max=h)
        self.tensor = torch.stack((x1, y1, x2, y2), dim=-1)

    def nonempty(self, threshold: float = 0.0) -> torch.Tensor:
        """(N,) bool: boxes whose width and height are both > ``threshold``."""
        box = self.tensor
        widths = box[:, 2] - box[:, 0]
        heights = box[:, 3] - box[:, 1]
        return (widths > threshold) & (heights > threshold)

    def __getitem__(self, item) -> "Boxes":
        """Index like a tensor (int, slice, bool mask or index tensor); always returns Boxes."""
        if isinstance(item, int):
            return Boxes(self.tensor[item].view(1, -1))
        b = self.tensor[item]
        assert b.dim() == 2, "Indexing on Boxes with {} failed to return a matrix!".format(item)
        return Boxes(b)

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __repr__(self) -> str:
        return "Boxes(" + str(self.tensor) + ")"

    def inside_box(self, box_size: Tuple[int, int], boundary_threshold: int = 0) -> torch.Tensor:
        """(N,) bool: boxes inside an image of ``box_size`` = (height, width), with a margin."""
        height, width = box_size
        return (
            (self.tensor[..., 0] >= -boundary_threshold)
            & (self.tensor[..., 1] >= -boundary_threshold)
            & (self.tensor[..., 2] < width + boundary_threshold)
            & (self.tensor[..., 3] < height + boundary_threshold)
        )

    def get_centers(self) -> torch.Tensor:
        """(N, 2) box centres (x, y)."""
        return (self.tensor[:, :2] + self.tensor[:, 2:]) / 2

    def scale(self, scale_x: float, scale_y: float) -> None:
        """Scale x coordinates by ``scale_x`` and y by ``scale_y``, in place."""
        self.tensor[:, 0::2] *= scale_x
        self.tensor[:, 1::2] *= scale_y

    @classmethod
    def cat(cls, boxes_list: List["Boxes"]) -> "Boxes":
        """Concatenate Boxes into a new Boxes that never shares storage with the inputs."""
        assert isinstance(boxes_list, (list, tuple))
        if len(boxes_list) == 0:
            return cls(torch.empty(0))
        assert all(isinstance(box, Boxes) for box in boxes_list)
        return cls(torch.cat([b.tensor for b in boxes_list], dim=0))

    @property
    def device(self):  # unannotated: TorchScript infers torch.device (a literal annotation fails)
        return self.tensor.device

    @torch.jit.unused
    def __iter__(self):
        """Yield each box as a row of ``tensor``: (4,) here, (5,) for RotatedBoxes."""
        yield from self.tensor


def pairwise_intersection(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """(N, M) intersection areas between every box of ``boxes1`` (N) and ``boxes2`` (M)."""
    boxes1, boxes2 = boxes1.tensor, boxes2.tensor
    width_height = torch.min(boxes1[:, None, 2:], boxes2[:, 2:]) - torch.max(
        boxes1[:, None, :2], boxes2[:, :2]
    )  # (N, M, 2)
    width_height.clamp_(min=0)
    return width_height.prod(dim=2)


def pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """(N, M) IoU; pairs that do not overlap (including empty boxes) get exactly 0."""
    area1 = boxes1.area()
    area2 = boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    return torch.where(
        inter > 0,
        inter / (area1[:, None] + area2 - inter),
        torch.zeros(1, dtype=inter.dtype, device=inter.device),
    )


def pairwise_ioa(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """(N, M) intersection over the area of the ``boxes2`` box; 0 where they do not overlap."""
    area2 = boxes2.area()
    inter = pairwise_intersection(boxes1, boxes2)
    return torch.where(
        inter > 0, inter / area2, torch.zeros(1, dtype=inter.dtype, device=inter.device)
    )


def pairwise_point_box_distance(points: torch.Tensor, boxes: Boxes) -> torch.Tensor:
    """(N, M, 4) distances (left, top, right, bottom) from each of N points to each of M boxes."""
    x, y = points.unsqueeze(dim=2).unbind(dim=1)  # (N, 1) each
    x0, y0, x1, y1 = boxes.tensor.unsqueeze(dim=0).unbind(dim=2)  # (1, M) each
    return torch.stack([x - x0, y - y0, x1 - x, y1 - y], dim=2)


def matched_pairwise_iou(boxes1: Boxes, boxes2: Boxes) -> torch.Tensor:
    """(N,) IoU between ``boxes1[i]`` and ``boxes2[i]``; both must have N boxes."""
    assert len(boxes1) == len(boxes2), (
        "boxlists should have the same number of entries, got {}, {}".format(len(boxes1), len(boxes2))
    )
    area1 = boxes1.area()
    area2 = boxes2.area()
    box1, box2 = boxes1.tensor, boxes2.tensor
    lt = torch.max(box1[:, :2], box2[:, :2])
    rb = torch.min(box1[:, 2:], box2[:, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    return inter / (area1 + area2 - inter)
