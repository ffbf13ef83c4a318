"""Input and output handling shared by the meta-architectures.

Inputs: each image dict's ``"image"`` is moved to the model's device, normalised with the pixel
mean/std, then the batch is zero-padded (after normalisation) to a common size divisible by the
backbone's ``size_divisibility``. Outputs: detections are rescaled to each input's
``"height"``/``"width"`` (default: the network-input size of that image).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import torch
from torch import nn

from ...layers import move_device_like
from ...structures import ImageList, Instances
from ..postprocessing import detector_postprocess

__all__ = [
    "check_inference_mode",
    "normalize_and_batch",
    "postprocess_detections",
    "register_pixel_stats",
]


def normalize_and_batch(
    batched_inputs: List[Dict[str, torch.Tensor]],
    pixel_mean: torch.Tensor,
    pixel_std: torch.Tensor,
    size_divisibility: int,
    padding_constraints: Dict[str, int],
) -> ImageList:
    """(C, H, W) images -> an :class:`ImageList` of ``(image - pixel_mean) / pixel_std``.

    ``pixel_mean`` / ``pixel_std`` are (C, 1, 1) buffers; images go to their device. The size
    arguments are the backbone's (:attr:`Backbone.size_divisibility`, ``padding_constraints``).
    """
    images = [move_device_like(x["image"], pixel_mean) for x in batched_inputs]
    images = [(x - pixel_mean) / pixel_std for x in images]
    return ImageList.from_tensors(images, size_divisibility, padding_constraints=padding_constraints)


def postprocess_detections(
    results: List[Instances],
    batched_inputs: List[Dict[str, torch.Tensor]],
    image_sizes: Sequence[Sequence[int]],
    key: str = "instances",
) -> List[Dict[str, Instances]]:
    """Apply :func:`detector_postprocess` per image; return ``[{key: instances}, ...]``."""
    processed_results = []
    for results_per_image, input_per_image, image_size in zip(results, batched_inputs, image_sizes):
        height = input_per_image.get("height", image_size[0])
        width = input_per_image.get("width", image_size[1])
        processed_results.append({key: detector_postprocess(results_per_image, height, width)})
    return processed_results


def register_pixel_stats(module: nn.Module, pixel_mean: Sequence[float], pixel_std: Sequence[float]) -> None:
    """Add ``pixel_mean``/``pixel_std`` as (C, 1, 1) buffers.

    They are non-persistent: they follow ``.to(device)`` but are not in the state dict, as in
    detectron2 (whose checkpoints do not have them).
    """
    module.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
    module.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
    if module.pixel_mean.shape != module.pixel_std.shape:
        raise ValueError(
            f"{type(module).__name__}: pixel_mean={list(pixel_mean)} and pixel_std={list(pixel_std)}, "
            "expected the same number of channels"
        )


def check_inference_mode(training: bool, name: str) -> None:
    """Raise if a module is in training mode: this package implements inference only.

    Takes ``module.training`` and the class name (not the module) so TorchScript can compile it.
    """
    if training:
        raise NotImplementedError(
            name + ": training mode is not supported by detectron2_export (inference only); "
            "call model.eval() first"
        )
