"""detectron2 inputs <-> the graph's tensors, shared by the export (example inputs) and the runtime.

Graph inputs:
    images        (N, C, H, W) float32: each image's raw pixels (the model's INPUT.FORMAT) in the
                  top-left corner; H, W the largest of the batch; the rest is ignored. A
                  graph of fixed batch 1 has no batch isolation: there H, W must be the
                  image's own (a larger canvas changes the features near its border).
    image_sizes   (N, 2) int64: (height, width) of each image as given to the model.
    output_sizes  (N, 2) int64: (height, width) the outputs are rescaled to (the inputs'
                  "height"/"width", as detectron2; default: the image size).
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np
import torch

from ...errors import ExportError

INPUT_NAMES = ["images", "image_sizes", "output_sizes"]


def _image(inputs: Dict, index: int) -> torch.Tensor:
    image = inputs.get("image") if isinstance(inputs, dict) else None
    if not isinstance(image, torch.Tensor) or image.dim() != 3 or image.shape[1] == 0 or image.shape[2] == 0:
        got = type(image).__name__ if not isinstance(image, torch.Tensor) else f"shape {tuple(image.shape)}"
        raise ExportError(f"inputs[{index}]['image']: {got}, expected a (C, H, W) tensor with H, W > 0")
    return image


def batch_inputs(batched_inputs: Sequence[Dict]) -> Dict[str, np.ndarray]:
    """detectron2's list of input dicts -> the graph's three inputs, as numpy arrays."""
    if len(batched_inputs) == 0:
        raise ExportError("inputs: an empty list, expected one dict per image")
    images = [_image(x, i) for i, x in enumerate(batched_inputs)]
    channels = {x.shape[0] for x in images}
    if len(channels) != 1:
        raise ExportError(f"inputs: images with {sorted(channels)} channels, expected the same for all")
    height = max(x.shape[1] for x in images)
    width = max(x.shape[2] for x in images)
    batch = np.zeros((len(images), channels.pop(), height, width), dtype=np.float32)
    image_sizes = np.zeros((len(images), 2), dtype=np.int64)
    output_sizes = np.zeros((len(images), 2), dtype=np.int64)
    for i, (x, inputs) in enumerate(zip(images, batched_inputs)):
        h, w = x.shape[1], x.shape[2]
        batch[i, :, :h, :w] = x.detach().cpu().to(torch.float32).numpy()
        image_sizes[i] = (h, w)
        output_sizes[i] = (int(inputs.get("height", h)), int(inputs.get("width", w)))
    return {"images": batch, "image_sizes": image_sizes, "output_sizes": output_sizes}


def dynamic_axes(output_names: List[str], dynamic_batch: bool) -> Dict[str, Dict[int, str]]:
    """Dynamic axes of every graph input and output: batch (optional), image size, detections."""
    batch = {0: "batch"} if dynamic_batch else {}
    axes = {
        "images": {**batch, 2: "height", 3: "width"},
        "image_sizes": dict(batch),
        "output_sizes": dict(batch),
    }
    per_output = {
        "num_instances": {},
        "pred_masks": {1: "detections", 2: "mask_height", 3: "mask_width"},
        "sem_seg": {2: "output_height", 3: "output_width"},
    }
    for name in output_names:
        axes[name] = {**batch, **per_output.get(name, {1: "detections"})}
    return axes
