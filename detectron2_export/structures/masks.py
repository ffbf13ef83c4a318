"""Instance masks (detectron2.structures.masks): full-image BitMasks and per-box ROIMasks."""

from typing import Any, List, Union

import numpy as np
import torch

from ..layers.roi_align import ROIAlign
from .boxes import Boxes

__all__ = ["BitMasks", "ROIMasks"]


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
