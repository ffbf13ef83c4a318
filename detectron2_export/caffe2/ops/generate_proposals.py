"""``GenerateProposals``: RPN proposals from objectness scores, deltas and anchors (SPEC 5.1)."""

from __future__ import annotations

import torch
from torch import Tensor

from ...errors import OperatorInputError
from ..op_args import BOX_DECODE_ARGS
from ..registry import Arg, register_op
from .box_utils import bbox_transform, caffe2_torch_ops, check_angle_bounds, clip_boxes, filter_boxes, nms


def generate_proposals(
    scores: Tensor,
    bbox_deltas: Tensor,
    im_info: Tensor,
    anchors: Tensor,
    spatial_scale: float,
    pre_nms_topN: int,
    post_nms_topN: int,
    nms_thresh: float,
    min_size: float,
    angle_bound_on: bool,
    angle_bound_lo: int,
    angle_bound_hi: int,
    clip_angle_thresh: float,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor]:
    """The kernel of ``_caffe2::GenerateProposals``: ``(rois (n, B+1), rois_probs (n,))``."""
    _check_inputs(scores, bbox_deltas, im_info, anchors)
    if anchors.shape[1] == 5 and angle_bound_on:
        check_angle_bounds("GenerateProposals", angle_bound_lo, angle_bound_hi)
    # Caffe2 stores the stride as float(1.0 / float(spatial_scale))
    scale32 = torch.tensor(spatial_scale, dtype=torch.float32)
    stride = (1.0 / scale32.double()).float().to(scores.device)
    box_dim = anchors.shape[1]
    rois, probs = [], []
    for i in range(scores.shape[0]):
        boxes, image_probs = _proposals_for_one_image(
            scores[i], bbox_deltas[i], im_info[i], anchors, stride,
            pre_nms_topN, post_nms_topN, nms_thresh, min_size,
            angle_bound_on, angle_bound_lo, angle_bound_hi, clip_angle_thresh, legacy_plus_one,
        )
        rois.append(torch.cat((boxes.new_full((boxes.shape[0], 1), float(i)), boxes), dim=1))
        probs.append(image_probs)
    if not rois:
        return scores.new_zeros((0, box_dim + 1)), scores.new_zeros((0,))
    return torch.cat(rois), torch.cat(probs)


def _check_inputs(scores: Tensor, bbox_deltas: Tensor, im_info: Tensor, anchors: Tensor) -> None:
    if scores.dim() != 4:
        raise OperatorInputError(f"GenerateProposals: scores shape={tuple(scores.shape)}, expected (N, A, H, W)")
    n, a, h, w = scores.shape
    if anchors.dim() != 2 or anchors.shape[1] not in (4, 5) or anchors.shape[0] != a:
        raise OperatorInputError(
            f"GenerateProposals: anchors shape={tuple(anchors.shape)}, expected ({a}, 4) or ({a}, 5)"
        )
    expected = (n, a * anchors.shape[1], h, w)
    if tuple(bbox_deltas.shape) != expected:
        raise OperatorInputError(
            f"GenerateProposals: bbox_deltas shape={tuple(bbox_deltas.shape)}, expected {expected}"
        )
    if tuple(im_info.shape) != (n, 3):
        raise OperatorInputError(f"GenerateProposals: im_info shape={tuple(im_info.shape)}, expected ({n}, 3)")


def _proposals_for_one_image(
    scores: Tensor, deltas: Tensor, im_info: Tensor, anchors: Tensor, stride: Tensor,
    pre_nms_topN: int, post_nms_topN: int, nms_thresh: float, min_size: float,
    angle_bound_on: bool, angle_bound_lo: int, angle_bound_hi: int, clip_angle_thresh: float,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor]:
    num_anchors, height, width = scores.shape
    box_dim = anchors.shape[1]
    flat = scores.reshape(-1)  # (a, y, x) order
    if 0 < pre_nms_topN < flat.numel():
        sorted_scores, order = flat.topk(pre_nms_topN, sorted=True)
    else:
        sorted_scores, order = flat.sort(descending=True, stable=True)
    cell = order // (height * width)
    pos = order % (height * width)
    shift_x = (pos % width).to(scores.dtype) * stride
    shift_y = (pos // width).to(scores.dtype) * stride
    if box_dim == 4:
        shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)
    else:
        zeros = torch.zeros_like(shift_x)
        shifts = torch.stack((shift_x, shift_y, zeros, zeros, zeros), dim=1)
    shifted_anchors = anchors[cell] + shifts
    picked_deltas = deltas.reshape(num_anchors, box_dim, height * width)[cell, :, pos]
    proposals = bbox_transform(
        shifted_anchors, picked_deltas, legacy_plus_one=legacy_plus_one,
        angle_bound_on=angle_bound_on, angle_bound_lo=angle_bound_lo, angle_bound_hi=angle_bound_hi,
    )
    im_h, im_w = (int(v) for v in im_info[:2].tolist())
    proposals = clip_boxes(
        proposals, im_h, im_w, clip_angle_thresh=clip_angle_thresh, legacy_plus_one=legacy_plus_one
    )
    candidates = torch.nonzero(
        filter_boxes(proposals, min_size, im_info, legacy_plus_one=legacy_plus_one)
    ).squeeze(1)
    top_n = post_nms_topN if 0 < post_nms_topN < candidates.numel() else -1
    keep = candidates[nms(proposals[candidates], nms_thresh, top_n, legacy_plus_one=legacy_plus_one)]
    return proposals[keep], sorted_scores[keep]


@register_op(
    "GenerateProposals",
    n_inputs=(4, 4),
    n_outputs=(2, 2),
    args=(
        Arg("spatial_scale", float, 1.0 / 16, lambda v: v > 0, "a positive float"),
        Arg("pre_nms_topN", int, 6000),
        Arg("post_nms_topN", int, 300),
        Arg("nms_thresh", float, 0.7),
        Arg("min_size", float, 16.0),
        *BOX_DECODE_ARGS,
    ),
    ignored_args=("correct_transform_coords",),
)
def generate_proposals_op(
    scores: Tensor, bbox_deltas: Tensor, im_info: Tensor, anchors: Tensor, **args
) -> tuple[Tensor, Tensor]:
    """Runtime entry: (rois, rois_probs) through ``torch.ops._caffe2.GenerateProposals``."""
    rois, probs = caffe2_torch_ops().GenerateProposals(scores, bbox_deltas, im_info, anchors, **args)
    return rois, probs
