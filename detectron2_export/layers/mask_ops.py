"""Paste per-box mask predictions into full-image masks (detectron2.layers.mask_ops).

Each (M, M) mask is resampled with ``grid_sample`` onto the image pixels its box covers, pixel
centres at ``i + 0.5``. On CPU masks are pasted one at a time, each only over the region of its
box (``skip_empty``); on GPU they are pasted in chunks bounded by ``GPU_MEM_LIMIT``. The result
itself (N, H, W) is refused above ``PASTED_MASKS_MEMORY_LIMIT`` before it is allocated.
"""

from typing import Tuple

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from ..errors import ResourceLimitError

__all__ = [
    "paste_masks_in_image",
    "paste_mask_in_image_old",
    "pad_masks",
    "scale_boxes",
    "BYTES_PER_FLOAT",
    "GPU_MEM_LIMIT",
    "PASTED_MASKS_MEMORY_LIMIT",
]

BYTES_PER_FLOAT = 4
# Upper bound on the memory of one chunk of pasted masks on GPU.
GPU_MEM_LIMIT = 1024**3  # 1 GB
# Upper bound on the (N, H, W) masks paste_masks_in_image returns, one byte per pixel: 100 masks of
# an 8000x8000 image would need 6.4 GB. Raise it (module attribute) to paste larger results.
PASTED_MASKS_MEMORY_LIMIT = 4 * 1024**3  # 4 GiB


@torch.jit.unused
def _check_pasted_size(n: int, img_h: int, img_w: int) -> None:
    size = n * int(img_h) * int(img_w)
    if size > PASTED_MASKS_MEMORY_LIMIT:
        raise ResourceLimitError(
            f"paste_masks_in_image: {n} masks of {int(img_h)}x{int(img_w)} need {size / 1e9:.2f} GB, more than "
            f"detectron2_export.layers.mask_ops.PASTED_MASKS_MEMORY_LIMIT={PASTED_MASKS_MEMORY_LIMIT / 1e9:.2f} GB; "
            "raise that limit, or pass a smaller image / fewer detections per image"
        )


def _do_paste_mask(masks, boxes, img_h: int, img_w: int, skip_empty: bool = True):
    """Resample masks (N, 1, M, M) into boxes (N, 4) on an (img_h, img_w) image.

    Returns the pasted float masks and the (y, x) slices of the image they cover: the whole image
    when ``skip_empty`` is false, otherwise the union of the boxes enlarged by one pixel.
    """
    device = masks.device

    if skip_empty and not torch.jit.is_scripting():
        x0_int, y0_int = torch.clamp(boxes.min(dim=0).values.floor()[:2] - 1, min=0).to(dtype=torch.int32)
        x1_int = torch.clamp(boxes[:, 2].max().ceil() + 1, max=img_w).to(dtype=torch.int32)
        y1_int = torch.clamp(boxes[:, 3].max().ceil() + 1, max=img_h).to(dtype=torch.int32)
    else:
        x0_int, y0_int = 0, 0
        x1_int, y1_int = img_w, img_h
    x0, y0, x1, y1 = torch.split(boxes, 1, dim=1)  # each is (N, 1)

    N = masks.shape[0]

    img_y = torch.arange(y0_int, y1_int, device=device, dtype=torch.float32) + 0.5
    img_x = torch.arange(x0_int, x1_int, device=device, dtype=torch.float32) + 0.5
    # pixel centres in the box's normalized [-1, 1] frame: (N, h) and (N, w)
    img_y = (img_y - y0) / (y1 - y0) * 2 - 1
    img_x = (img_x - x0) / (x1 - x0) * 2 - 1

    gx = img_x[:, None, :].expand(N, img_y.size(1), img_x.size(1))
    gy = img_y[:, :, None].expand(N, img_y.size(1), img_x.size(1))
    grid = torch.stack([gx, gy], dim=3)

    if not torch.jit.is_scripting():
        if not masks.dtype.is_floating_point:
            masks = masks.float()
    img_masks = F.grid_sample(masks, grid.to(masks.dtype), align_corners=False)

    if skip_empty and not torch.jit.is_scripting():
        return img_masks[:, 0], (slice(y0_int, y1_int), slice(x0_int, x1_int))
    return img_masks[:, 0], ()


# boxes is annotated as a Tensor (not Boxes) so that the function can be scripted while tracing.
@torch.jit.script_if_tracing
def paste_masks_in_image(
    masks: torch.Tensor, boxes: torch.Tensor, image_shape: Tuple[int, int], threshold: float = 0.5
) -> torch.Tensor:
    """Paste masks (N, M, M) of boxes (N, 4) (Tensor or Boxes) into an image of ``image_shape``.

    Returns (N, H, W) masks: bool ``mask >= threshold`` when ``threshold >= 0``, otherwise uint8
    ``mask * 255`` (soft masks, for visualization).
    """
    assert masks.shape[-1] == masks.shape[-2], "Only square mask predictions are supported"
    N = len(masks)
    if N == 0:
        return masks.new_empty((0,) + image_shape, dtype=torch.uint8)
    if not isinstance(boxes, torch.Tensor):
        boxes = boxes.tensor
    device = boxes.device
    assert len(boxes) == N, boxes.shape

    img_h, img_w = image_shape
    if not torch.jit.is_scripting():
        _check_pasted_size(N, img_h, img_w)

    if device.type == "cpu" or torch.jit.is_scripting():
        # one mask at a time, over its own box only: the fewest operations on CPU
        num_chunks = N
    else:
        # int(...) because the sizes may be tensors while tracing
        num_chunks = int(np.ceil(N * int(img_h) * int(img_w) * BYTES_PER_FLOAT / GPU_MEM_LIMIT))
        assert num_chunks <= N, "Default GPU_MEM_LIMIT in mask_ops.py is too small; try increasing it"
    chunks = torch.chunk(torch.arange(N, device=device), num_chunks)

    img_masks = torch.zeros(
        N, img_h, img_w, device=device, dtype=torch.bool if threshold >= 0 else torch.uint8
    )
    for inds in chunks:
        masks_chunk, spatial_inds = _do_paste_mask(
            masks[inds, None, :, :], boxes[inds], img_h, img_w, skip_empty=device.type == "cpu"
        )

        if threshold >= 0:
            masks_chunk = (masks_chunk >= threshold).to(dtype=torch.bool)
        else:
            masks_chunk = (masks_chunk * 255).to(dtype=torch.uint8)

        if torch.jit.is_scripting():  # scripting cannot index with the slices
            img_masks[inds] = masks_chunk
        else:
            img_masks[(inds,) + spatial_inds] = masks_chunk
    return img_masks


@torch.jit.script_if_tracing
def _paste_masks_tensor_shape(
    masks: torch.Tensor,
    boxes: torch.Tensor,
    image_shape: Tuple[torch.Tensor, torch.Tensor],
    threshold: float = 0.5,
) -> torch.Tensor:
    """paste_masks_in_image for an ``image_shape`` of tensors (sizes while tracing).

    Scripted while tracing, so the tensor -> int conversion is part of the graph instead of a
    constant baked in by the tracer.
    """
    return paste_masks_in_image(masks, boxes, (int(image_shape[0]), int(image_shape[1])), threshold)


def paste_mask_in_image_old(
    mask: torch.Tensor, box: torch.Tensor, img_h: int, img_w: int, threshold: float
) -> torch.Tensor:
    """Detectron1's paste of one (M, M) float mask into an (img_h, img_w) uint8 image, kept for
    comparison (upstream keeps it too; it quantizes more than :func:`paste_masks_in_image`).

    The box is truncated to ints and covers ``x1 - x0 + 1`` by ``y1 - y0 + 1`` pixels; the mask
    is resized to that with PIL's bilinear filter, then thresholded (``> threshold``, 0/1) or,
    for ``threshold < 0``, scaled by 255.
    """
    x0, y0, x1, y1 = (int(v) for v in box.to(dtype=torch.int32).tolist())
    samples_w, samples_h = x1 - x0 + 1, y1 - y0 + 1
    resized = np.asarray(Image.fromarray(mask.cpu().numpy()).resize((samples_w, samples_h), Image.BILINEAR))
    if threshold >= 0:
        pasted = torch.from_numpy((resized > threshold).astype(np.uint8))
    else:
        pasted = torch.from_numpy(resized * 255).to(torch.uint8)
    im_mask = torch.zeros((img_h, img_w), dtype=torch.uint8)
    cx0, cx1 = max(x0, 0), min(x1 + 1, img_w)
    cy0, cy1 = max(y0, 0), min(y1 + 1, img_h)
    im_mask[cy0:cy1, cx0:cx1] = pasted[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return im_mask


def pad_masks(masks: torch.Tensor, padding: int) -> Tuple[torch.Tensor, float]:
    """Zero-pad (B, M, M) masks by ``padding`` cells on every side.

    Returns the (B, M + 2p, M + 2p) masks and the size ratio (M + 2p) / M, the factor by which
    :func:`scale_boxes` grows the boxes so that the padded masks still fit them.
    """
    m = masks.shape[-1]
    padded = F.pad(masks, (padding, padding, padding, padding))
    return padded, float(m + 2 * padding) / m


def scale_boxes(boxes: torch.Tensor, scale: float) -> torch.Tensor:
    """(B, 4) XYXY boxes scaled by ``scale`` about their centres."""
    half_w = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    half_h = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    ctr_x = (boxes[:, 2] + boxes[:, 0]) * 0.5
    ctr_y = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack([ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h], dim=1)
