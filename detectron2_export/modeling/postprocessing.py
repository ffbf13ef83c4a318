"""Map raw model outputs back to the caller's image resolution (detectron2.modeling.postprocessing).

Models see resized (and padded) images; these functions rescale their outputs to the
``height``/``width`` the caller asked for (usually the original image size).
"""

from __future__ import annotations

from typing import Tuple, Union

import torch
import torch.nn.functional as F

from ..structures import Instances, ROIMasks

__all__ = ["detector_postprocess", "sem_seg_postprocess"]


def detector_postprocess(
    results: Instances,
    output_height: Union[int, torch.Tensor],
    output_width: Union[int, torch.Tensor],
    mask_threshold: float = 0.5,
) -> Instances:
    """Rescale detections from ``results.image_size`` to (output_height, output_width).

    Boxes (``pred_boxes``, or ``proposal_boxes`` for proposals) are scaled, clipped to the output
    size, and instances with an empty box are dropped. ``pred_masks`` ((N, 1, M, M) per-box mask
    probabilities, or :class:`ROIMasks`) are pasted into full-image boolean masks with
    ``mask_threshold``. ``pred_keypoints`` x and y are scaled.

    Args:
        results: raw outputs of a detector for one image; may be modified in place.
        output_height, output_width: the desired resolution (ints, or 0-dim tensors while tracing).

    Returns:
        Instances of image size (output_height, output_width).
    """
    if isinstance(output_width, torch.Tensor):
        # Sizes may be integer tensors while tracing: use float copies so that the scales below
        # are true divisions.
        output_width_tmp = output_width.float()
        output_height_tmp = output_height.float()
        new_size = torch.stack([output_height, output_width])
    else:
        new_size = (output_height, output_width)
        output_width_tmp = output_width
        output_height_tmp = output_height

    scale_x, scale_y = (
        output_width_tmp / results.image_size[1],
        output_height_tmp / results.image_size[0],
    )
    results = Instances(new_size, **results.get_fields())

    if results.has("pred_boxes"):
        output_boxes = results.pred_boxes
    elif results.has("proposal_boxes"):
        output_boxes = results.proposal_boxes
    else:
        output_boxes = None
    assert output_boxes is not None, "Predictions must contain boxes!"

    output_boxes.scale(scale_x, scale_y)
    output_boxes.clip(results.image_size)

    results = results[output_boxes.nonempty()]

    if results.has("pred_masks"):
        if isinstance(results.pred_masks, ROIMasks):
            roi_masks = results.pred_masks
        else:
            # (N, 1, M, M) mask probabilities, one M x M mask per box
            roi_masks = ROIMasks(results.pred_masks[:, 0, :, :])
        results.pred_masks = roi_masks.to_bitmasks(
            results.pred_boxes, output_height, output_width, mask_threshold
        ).tensor

    if results.has("pred_keypoints"):
        results.pred_keypoints[:, :, 0] *= scale_x
        results.pred_keypoints[:, :, 1] *= scale_y

    return results


def sem_seg_postprocess(
    result: torch.Tensor, img_size: Tuple[int, int], output_height: int, output_width: int
) -> torch.Tensor:
    """Crop the padding off (C, H, W) segmentation logits and resize them to the output size.

    Args:
        result: (C, H, W) logits on the padded network input.
        img_size: (height, width) of the unpadded network input.
        output_height, output_width: the desired resolution.

    Returns:
        (C, output_height, output_width) logits (bilinear, ``align_corners=False``).
    """
    result = result[:, : img_size[0], : img_size[1]].expand(1, -1, -1, -1)
    result = F.interpolate(result, size=(output_height, output_width), mode="bilinear", align_corners=False)[
        0
    ]
    return result
