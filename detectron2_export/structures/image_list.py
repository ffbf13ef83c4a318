"""ImageList (detectron2.structures.image_list): images of different sizes padded into one batch."""

from typing import Any, Dict, List, Optional, Tuple

import torch
from torch.nn import functional as F

from ..layers.wrappers import move_device_like, shapes_to_tensor

__all__ = ["ImageList"]


class ImageList:
    """A padded batch ``tensor`` (N, ..., H, W) plus each image's original (h, w) in ``image_sizes``.

    While tracing, ``image_sizes`` holds tensors instead of ints so the traced graph keeps the
    input resolution dynamic.
    """

    def __init__(self, tensor: torch.Tensor, image_sizes: List[Tuple[int, int]]):
        self.tensor = tensor
        self.image_sizes = image_sizes

    def __len__(self) -> int:
        return len(self.image_sizes)

    def __getitem__(self, idx) -> torch.Tensor:
        """Image ``idx`` without its padding: (..., h, w)."""
        size = self.image_sizes[idx]
        return self.tensor[idx, ..., : size[0], : size[1]]

    @torch.jit.unused
    def to(self, *args: Any, **kwargs: Any) -> "ImageList":
        cast_tensor = self.tensor.to(*args, **kwargs)
        return ImageList(cast_tensor, self.image_sizes)

    @property
    def device(self):  # unannotated: TorchScript infers torch.device (a literal annotation fails)
        return self.tensor.device

    @staticmethod
    def from_tensors(
        tensors: List[torch.Tensor],
        size_divisibility: int = 0,
        pad_value: float = 0.0,
        padding_constraints: Optional[Dict[str, int]] = None,
    ) -> "ImageList":
        """Pad tensors (each (..., H_i, W_i), same leading dims) at the bottom/right into one batch.

        The batch's H and W are the maxima over the images, rounded up to a multiple of
        ``size_divisibility`` when it is > 1. ``padding_constraints`` may set "square_size"
        (pad to that square) and "size_divisibility" (overrides the argument).
        """
        assert len(tensors) > 0
        assert isinstance(tensors, (tuple, list))
        for t in tensors:
            assert isinstance(t, torch.Tensor), type(t)
            assert t.shape[:-2] == tensors[0].shape[:-2], t.shape

        image_sizes = [(im.shape[-2], im.shape[-1]) for im in tensors]
        image_sizes_tensor = [shapes_to_tensor(x) for x in image_sizes]
        max_size = torch.stack(image_sizes_tensor).max(0).values

        if padding_constraints is not None:
            square_size = padding_constraints.get("square_size", 0)
            if square_size > 0:
                max_size[0] = max_size[1] = square_size
            if "size_divisibility" in padding_constraints:
                size_divisibility = padding_constraints["size_divisibility"]
        if size_divisibility > 1:
            stride = size_divisibility
            # H and W (the last two dims) are both rounded up to a multiple of stride
            max_size = (max_size + (stride - 1)).div(stride, rounding_mode="floor") * stride

        if torch.jit.is_scripting():
            max_size: List[int] = max_size.to(dtype=torch.long).tolist()
        elif torch.jit.is_tracing():
            image_sizes = image_sizes_tensor

        if len(tensors) == 1:
            # one image: a single pad is slightly faster than allocate + copy
            image_size = image_sizes[0]
            padding_size = [0, max_size[-1] - image_size[1], 0, max_size[-2] - image_size[0]]
            batched_imgs = F.pad(tensors[0], padding_size, value=pad_value).unsqueeze_(0)
        else:
            # max_size is a tensor while tracing, hence list(...)
            batch_shape = [len(tensors)] + list(tensors[0].shape[:-2]) + list(max_size)
            device = None if torch.jit.is_scripting() else ("cpu" if torch.jit.is_tracing() else None)
            batched_imgs = tensors[0].new_full(batch_shape, pad_value, device=device)
            batched_imgs = move_device_like(batched_imgs, tensors[0])
            for i, img in enumerate(tensors):
                # index batched_imgs directly: tracing does not record copy_ into a temporary
                batched_imgs[i, ..., : img.shape[-2], : img.shape[-1]].copy_(img)

        return ImageList(batched_imgs.contiguous(), image_sizes)
