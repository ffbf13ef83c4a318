"""Instance masks (detectron2.structures.masks): full-image BitMasks and per-box ROIMasks, and
the rasterization of polygons (COCO's format of ground-truth masks) with pycocotools.

``PolygonMasks`` (ground truth as polygons) is training-only: importable, it raises when built.
"""

from typing import Any, List, Union

import numpy as np
import pycocotools.mask as mask_util
import torch

from ..layers.roi_align import ROIAlign
from ..utils.training_only import training_only_class
from .boxes import Boxes

__all__ = [
    "BitMasks",
    "PolygonMasks",
    "ROIMasks",
    "polygon_area",
    "polygons_to_bitmask",
    "rasterize_polygons_within_box",
]

PolygonMasks = training_only_class(__name__, "PolygonMasks")


def polygon_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area of the polygon with vertices (x[i], y[i]) (shoelace formula, either orientation)."""
    return 0.5 * np.abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def polygons_to_bitmask(polygons: List[np.ndarray], height: int, width: int) -> np.ndarray:
    """The union of ``polygons`` (each a flat [x0, y0, x1, y1, ...] array) as a bool (height, width)
    mask, rasterized by pycocotools as COCO's own masks are."""
    if len(polygons) == 0:  # pycocotools rejects an empty list
        return np.zeros((height, width), dtype=bool)
    rles = mask_util.frPyObjects([np.asarray(p, dtype=np.float64) for p in polygons], height, width)
    return mask_util.decode(mask_util.merge(rles)).astype(bool)


def rasterize_polygons_within_box(polygons: List[np.ndarray], box: np.ndarray, mask_size: int) -> torch.Tensor:
    """Rasterize ``polygons`` into a (mask_size, mask_size) bool mask covering ``box`` (XYXY): the
    mask targets of detectron2's mask head. Box sides under 0.1 count as 0.1."""
    w, h = box[2] - box[0], box[3] - box[1]
    scale_x, scale_y = mask_size / max(w, 0.1), mask_size / max(h, 0.1)
    in_box = []
    for p in polygons:
        q = np.array(p, dtype=np.float64)
        q[0::2] = (q[0::2] - box[0]) * scale_x
        q[1::2] = (q[1::2] - box[1]) * scale_y
        in_box.append(q)
    return torch.from_numpy(polygons_to_bitmask(in_box, mask_size, mask_size))


class BitMasks:
    """N full-image binary masks: a bool (N, H, W) tensor."""

    def __init__(self, tensor: Union[torch.Tensor, np.ndarray]):
        if isinstance(tensor, torch.Tensor):
            tensor = tensor.to(torch.bool)
        else:
            tensor = torch.as_tensor(tensor, dtype=torch.bool, device=torch.device("cpu"))
        assert tensor.dim() == 3, tensor.size()
        self.image_size = tensor.shape[1:]
        self.tensor = tensor

    @torch.jit.unused
    def to(self, *args: Any, **kwargs: Any) -> "BitMasks":
        return BitMasks(self.tensor.to(*args, **kwargs))

    @property
    def device(self):  # unannotated: TorchScript infers torch.device (a literal annotation fails)
        return self.tensor.device

    @torch.jit.unused
    def __getitem__(self, item) -> "BitMasks":
        """Index the masks; an int gives BitMasks of one mask."""
        if isinstance(item, int):
            return BitMasks(self.tensor[item].unsqueeze(0))
        m = self.tensor[item]
        assert m.dim() == 3, "Indexing on BitMasks with {} returns a tensor with shape {}!".format(
            item, m.shape
        )
        return BitMasks(m)

    @torch.jit.unused
    def __iter__(self):
        yield from self.tensor

    @torch.jit.unused
    def __repr__(self) -> str:
        return self.__class__.__name__ + "(num_instances={})".format(len(self.tensor))

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def nonempty(self) -> torch.Tensor:
        """(N,) bool: masks with at least one pixel set."""
        return self.tensor.flatten(1).any(dim=1)

    def crop_and_resize(self, boxes: torch.Tensor, mask_size: int) -> torch.Tensor:
        """Crop mask i to ``boxes[i]`` and resize it to mask_size x mask_size (bool).

        Uses aligned RoIAlign with adaptive sampling, then thresholds at 0.5.
        """
        assert len(boxes) == len(self), "{} != {}".format(len(boxes), len(self))
        device = self.tensor.device

        batch_inds = torch.arange(len(boxes), device=device).to(dtype=boxes.dtype)[:, None]
        rois = torch.cat([batch_inds, boxes], dim=1)  # (N, 5)

        bit_masks = self.tensor.to(dtype=torch.float32)
        rois = rois.to(device=device)
        output = (
            ROIAlign((mask_size, mask_size), 1.0, 0, aligned=True)
            .forward(bit_masks[:, None, :, :], rois)
            .squeeze(1)
        )
        return output >= 0.5

    def get_bounding_boxes(self) -> Boxes:
        """Tight XYXY boxes around each mask (x1 = last set column + 1); empty masks give zeros."""
        boxes = torch.zeros(self.tensor.shape[0], 4, dtype=torch.float32)
        x_any = torch.any(self.tensor, dim=1)
        y_any = torch.any(self.tensor, dim=2)
        for idx in range(self.tensor.shape[0]):
            x = torch.where(x_any[idx, :])[0]
            y = torch.where(y_any[idx, :])[0]
            if len(x) > 0 and len(y) > 0:
                boxes[idx, :] = torch.as_tensor([x[0], y[0], x[-1] + 1, y[-1] + 1], dtype=torch.float32)
        return Boxes(boxes)

    @staticmethod
    @torch.jit.unused
    def from_polygon_masks(polygon_masks: List[List[np.ndarray]], height: int, width: int) -> "BitMasks":
        """One mask per instance from its list of polygons (flat [x0, y0, x1, y1, ...] arrays)."""
        masks = [polygons_to_bitmask(polygons, height, width) for polygons in polygon_masks]
        if not masks:
            return BitMasks(torch.empty(0, height, width, dtype=torch.bool))
        return BitMasks(torch.stack([torch.from_numpy(m) for m in masks]))

    @staticmethod
    def cat(bitmasks_list: List["BitMasks"]) -> "BitMasks":
        assert isinstance(bitmasks_list, (list, tuple))
        assert len(bitmasks_list) > 0
        assert all(isinstance(bitmask, BitMasks) for bitmask in bitmasks_list)
        return type(bitmasks_list[0])(torch.cat([bm.tensor for bm in bitmasks_list], dim=0))


class ROIMasks:
    """N masks predicted inside their boxes: an (N, M, M) tensor (one M x M grid per box)."""

    def __init__(self, tensor: torch.Tensor):
        if tensor.dim() != 3:
            raise ValueError("ROIMasks must take a masks of 3 dimension.")
        self.tensor = tensor

    def to(self, device: torch.device) -> "ROIMasks":
        return ROIMasks(self.tensor.to(device))

    @property
    def device(self):  # unannotated: TorchScript infers torch.device (a literal annotation fails)
        return self.tensor.device

    def __len__(self) -> int:
        return self.tensor.shape[0]

    def __getitem__(self, item) -> "ROIMasks":
        """Index the masks; the result must still be 3-D (use a slice or mask, not an int)."""
        t = self.tensor[item]
        if t.dim() != 3:
            raise ValueError(f"Indexing on ROIMasks with {item} returns a tensor with shape {t.shape}!")
        return ROIMasks(t)

    @torch.jit.unused
    def __repr__(self) -> str:
        return self.__class__.__name__ + "(num_instances={})".format(len(self.tensor))

    @torch.jit.unused
    def to_bitmasks(self, boxes: Boxes, height, width, threshold: float = 0.5) -> BitMasks:
        """Paste each mask into its box on a (height, width) image (see paste_masks_in_image).

        ``height``/``width`` may be tensors while tracing; the int conversion is then kept out of
        the scripted paste function.
        """
        from ..layers.mask_ops import _paste_masks_tensor_shape, paste_masks_in_image

        if torch.jit.is_tracing() and isinstance(height, torch.Tensor):
            paste_func = _paste_masks_tensor_shape
        else:
            paste_func = paste_masks_in_image
        bitmasks = paste_func(self.tensor, boxes.tensor, (height, width), threshold=threshold)
        return BitMasks(bitmasks)
