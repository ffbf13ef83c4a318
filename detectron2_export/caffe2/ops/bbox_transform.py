"""``BBoxTransform``: per-class box decoding of the box head's regression (SPEC 5.2)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import OperatorInputError
from ..op_args import BOX_DECODE_ARGS
from ..registry import Arg, register_op
from .box_utils import bbox_transform as decode
from .box_utils import caffe2_torch_ops, check_angle_bounds, clip_boxes


def bbox_transform(
    rois: Tensor,
    deltas: Tensor,
    im_info: Tensor,
    weights: list[float],
    apply_scale: bool,
    rotated: bool,
    angle_bound_on: bool,
    angle_bound_lo: int,
    angle_bound_hi: int,
    clip_angle_thresh: float,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor]:
    """The kernel of ``_caffe2::BBoxTransform``: ``(box_out (R, B*K), roi_batch_splits (N,))``."""
    box_dim = 5 if rotated else 4
    _check_inputs(rois, deltas, im_info, weights, box_dim)
    if rotated and angle_bound_on:
        check_angle_bounds("BBoxTransform", angle_bound_lo, angle_bound_hi)
    num_rois, batch_size = rois.shape[0], im_info.shape[0]
    if rois.shape[1] == box_dim:
        if batch_size != 1:
            raise OperatorInputError(
                f"BBoxTransform: im_info rows={batch_size} with rois of {box_dim} columns (no batch index), expected 1"
            )
        counts = torch.tensor([num_rois], device=rois.device)
    else:
        batch_ids = rois[:, 0].to(torch.int64)
        if num_rois > 0 and (int(batch_ids.max()) >= batch_size or int(batch_ids.min()) < 0 or rois[:, 0].isnan().any()):
            raise OperatorInputError(
                f"BBoxTransform: roi batch indices in [{float(rois[:, 0].min())}, {float(rois[:, 0].max())}], "
                f"expected in [0, {batch_size - 1}] (rows of im_info)"
            )
        counts = torch.bincount(batch_ids, minlength=batch_size)
    # Caffe2 walks the rois image by image in contiguous blocks of `counts` rows
    image = torch.repeat_interleave(torch.arange(batch_size, device=rois.device), counts)
    info = im_info[image]
    scale_before = info[:, 2]
    scale_after = scale_before if apply_scale else torch.ones_like(scale_before)
    img_h = ((info[:, 0] / scale_before).double() + 0.5).trunc().to(torch.int64)
    img_w = ((info[:, 1] / scale_before).double() + 0.5).trunc().to(torch.int64)

    boxes = rois[:, -box_dim:].clone()
    boxes[:, :4] = boxes[:, :4] / scale_before.unsqueeze(1)
    num_classes = deltas.shape[1] // box_dim
    decoded = decode(
        boxes.unsqueeze(1), deltas.reshape(num_rois, num_classes, box_dim), weights,
        legacy_plus_one=legacy_plus_one, angle_bound_on=angle_bound_on,
        angle_bound_lo=angle_bound_lo, angle_bound_hi=angle_bound_hi,
    )
    clipped = clip_boxes(
        decoded, img_h.unsqueeze(1), img_w.unsqueeze(1),
        clip_angle_thresh=clip_angle_thresh, legacy_plus_one=legacy_plus_one,
    )
    # angles are never scaled
    clipped[..., :4] = clipped[..., :4] * scale_after.view(-1, 1, 1)
    return clipped.reshape(num_rois, num_classes * box_dim), counts.to(rois.dtype)


def _check_inputs(rois: Tensor, deltas: Tensor, im_info: Tensor, weights: list[float], box_dim: int) -> None:
    if rois.dim() != 2 or rois.shape[1] not in (box_dim, box_dim + 1):
        raise OperatorInputError(
            f"BBoxTransform: rois shape={tuple(rois.shape)}, expected (R, {box_dim}) or (R, {box_dim + 1})"
        )
    if deltas.dim() != 2 or deltas.shape[0] != rois.shape[0] or deltas.shape[1] % box_dim != 0:
        raise OperatorInputError(
            f"BBoxTransform: deltas shape={tuple(deltas.shape)}, expected ({rois.shape[0]}, {box_dim} * K)"
        )
    if im_info.dim() != 2 or im_info.shape[1] != 3:
        raise OperatorInputError(f"BBoxTransform: im_info shape={tuple(im_info.shape)}, expected (N, 3)")
    if len(weights) != 4:
        raise OperatorInputError(f"BBoxTransform: weights={list(weights)}, expected 4 floats")


@register_op(
    "BBoxTransform",
    n_inputs=(3, 3),
    n_outputs=(1, 2),
    args=(
        Arg("weights", list, [1.0, 1.0, 1.0, 1.0], lambda v: len(v) == 4, "a list of 4 floats"),
        Arg("apply_scale", bool, True),
        Arg("rotated", bool, False),
        *BOX_DECODE_ARGS,
    ),
    ignored_args=("correct_transform_coords",),
)
def bbox_transform_op(rois: Tensor, deltas: Tensor, im_info: Tensor, **args) -> tuple[Tensor, Tensor]:
    """Runtime entry: (box_out, roi_batch_splits) through ``torch.ops._caffe2.BBoxTransform``."""
    args["weights"] = [float(w) for w in args["weights"]]
    box_out, splits = caffe2_torch_ops().BBoxTransform(rois, deltas, im_info, **args)
    return box_out, splits
