"""FPN proposal ops: ``CollectRpnProposals``, ``DistributeFpnProposals`` and their fusion
``CollectAndDistributeFpnRpnProposals`` (SPEC 5.5-5.7).

The torch schemas (``caffe2/library.py``) have exactly four RoI levels, like upstream's; the
runtime accepts any level range and calls the kernels directly when it is not four levels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ...errors import OperatorArgumentError, OperatorInputError
from ..registry import Arg, register_op
from .box_utils import caffe2_torch_ops

SCHEMA_ROI_LEVELS = 4
"""Number of ``rois_fpn*`` outputs of the torch schemas of the distributing ops."""


def collect_rpn_proposals(
    input_list: list[Tensor], rpn_max_level: int, rpn_min_level: int, rpn_post_nms_topN: int
) -> Tensor:
    """The kernel of ``_caffe2::CollectRpnProposals``: the top rois of all levels by score.

    Ties are broken by the position in the concatenation; the limit applies to all images together.
    """
    num_levels = rpn_max_level - rpn_min_level + 1
    if num_levels < 1 or len(input_list) != 2 * num_levels:
        raise OperatorInputError(
            f"CollectRpnProposals: {len(input_list)} inputs, expected 2 * (rpn_max_level - rpn_min_level + 1)"
            f" = {2 * num_levels} (rois of each level, then their scores)"
        )
    for level_rois in input_list[:num_levels]:
        if level_rois.dim() != 2 or level_rois.shape[1] != 5:
            raise OperatorInputError(
                f"CollectRpnProposals: rois shape={tuple(level_rois.shape)}, expected (n, 5) = (batch, x1, y1, x2, y2)"
            )
    rois = torch.cat(input_list[:num_levels])
    scores = torch.cat([s.reshape(-1) for s in input_list[num_levels:]])
    if scores.numel() != rois.shape[0]:
        raise OperatorInputError(
            f"CollectRpnProposals: {scores.numel()} scores for {rois.shape[0]} rois, expected one score per roi"
        )
    order = scores.argsort(descending=True, stable=True)
    if 0 < rpn_post_nms_topN < order.numel():
        order = order[:rpn_post_nms_topN]
    return rois[order]


def map_rois_to_fpn_levels(
    boxes: Tensor, min_level: int, max_level: int, canonical_scale: int, canonical_level: int, legacy_plus_one: bool
) -> Tensor:
    """FPN level of each XYXY box: ``floor(lvl0 + log2(sqrt(area) / s0 + 1e-6))`` clipped to the range."""
    plus = float(legacy_plus_one)
    areas = (boxes[:, 2] - boxes[:, 0] + plus) * (boxes[:, 3] - boxes[:, 1] + plus)
    if bool((areas < 0).any()):
        raise OperatorInputError(
            "DistributeFpnProposals: Negative areas founds, expected boxes with x2 >= x1 and y2 >= y1"
        )
    # float32 steps as Caffe2: log(.) / log(2) rather than log2
    levels = torch.floor(canonical_level + torch.log(torch.sqrt(areas) / canonical_scale + 1e-6) / math.log(2))
    return levels.clamp(max=max_level).clamp(min=min_level)


_MAX_LEVELS = 16
"""Most FPN levels DistributeFpnProposals distributes over (detectron2 uses 4 or 5)."""


def distribute_fpn_proposals(
    rois: Tensor,
    roi_canonical_scale: int,
    roi_canonical_level: int,
    roi_max_level: int,
    roi_min_level: int,
    legacy_plus_one: bool,
) -> list[Tensor]:
    """``[rois_fpn{min}, ..., rois_fpn{max}, rois_idx_restore_int32]`` for any number of levels."""
    if not roi_min_level <= roi_max_level < roi_min_level + _MAX_LEVELS:
        raise OperatorArgumentError(
            f"DistributeFpnProposals: roi_max_level={roi_max_level}, expected in [roi_min_level={roi_min_level}, "
            f"roi_min_level + {_MAX_LEVELS - 1}] (one output per level)"
        )
    if rois.dim() != 2 or rois.shape[1] not in (4, 5):
        raise OperatorInputError(f"DistributeFpnProposals: rois shape={tuple(rois.shape)}, expected (R, 4) or (R, 5)")
    if rois.shape[1] == 4:
        rois = torch.cat((rois.new_zeros((rois.shape[0], 1)), rois), dim=1)
    levels = map_rois_to_fpn_levels(
        rois[:, 1:], roi_min_level, roi_max_level, roi_canonical_scale, roi_canonical_level, legacy_plus_one
    )
    outputs, order = [], []
    for level in range(roi_min_level, roi_max_level + 1):
        index = torch.nonzero(levels == level).squeeze(1)
        outputs.append(rois[index])
        order.append(index)
    restore = torch.cat(order).argsort().to(torch.int32)
    return outputs + [restore]


def _check_schema_levels(op: str, roi_max_level: int, roi_min_level: int) -> None:
    if roi_max_level - roi_min_level + 1 != SCHEMA_ROI_LEVELS:
        raise OperatorArgumentError(
            f"{op}: roi_max_level - roi_min_level + 1={roi_max_level - roi_min_level + 1}, expected "
            f"{SCHEMA_ROI_LEVELS} (the torch schema has four rois_fpn outputs)"
        )


def distribute_fpn_proposals_4(
    rois: Tensor,
    roi_canonical_scale: int,
    roi_canonical_level: int,
    roi_max_level: int,
    roi_min_level: int,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The kernel of ``_caffe2::DistributeFpnProposals`` (four levels)."""
    _check_schema_levels("DistributeFpnProposals", roi_max_level, roi_min_level)
    return tuple(
        distribute_fpn_proposals(
            rois, roi_canonical_scale, roi_canonical_level, roi_max_level, roi_min_level, legacy_plus_one
        )
    )


def collect_and_distribute_fpn_rpn_proposals(
    input_list: list[Tensor],
    roi_canonical_scale: int,
    roi_canonical_level: int,
    roi_max_level: int,
    roi_min_level: int,
    rpn_max_level: int,
    rpn_min_level: int,
    rpn_post_nms_topN: int,
    legacy_plus_one: bool,
) -> list[Tensor]:
    """``[rois, rois_fpn{min}, ..., rois_fpn{max}, rois_idx_restore_int32]`` for any number of levels."""
    rois = collect_rpn_proposals(input_list, rpn_max_level, rpn_min_level, rpn_post_nms_topN)
    distributed = distribute_fpn_proposals(
        rois, roi_canonical_scale, roi_canonical_level, roi_max_level, roi_min_level, legacy_plus_one
    )
    return [rois] + distributed


def collect_and_distribute_fpn_rpn_proposals_4(
    input_list: list[Tensor],
    roi_canonical_scale: int,
    roi_canonical_level: int,
    roi_max_level: int,
    roi_min_level: int,
    rpn_max_level: int,
    rpn_min_level: int,
    rpn_post_nms_topN: int,
    legacy_plus_one: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The kernel of ``_caffe2::CollectAndDistributeFpnRpnProposals`` (four levels)."""
    _check_schema_levels("CollectAndDistributeFpnRpnProposals", roi_max_level, roi_min_level)
    return tuple(
        collect_and_distribute_fpn_rpn_proposals(
            input_list, roi_canonical_scale, roi_canonical_level, roi_max_level, roi_min_level,
            rpn_max_level, rpn_min_level, rpn_post_nms_topN, legacy_plus_one,
        )
    )


_RPN_ARGS = (
    Arg("rpn_max_level", int, 6),
    Arg("rpn_min_level", int, 2),
    Arg("rpn_post_nms_topN", int, 2000),
)
_ROI_ARGS = (
    Arg("roi_canonical_scale", int, 224, lambda v: v > 0, "a positive int"),
    Arg("roi_canonical_level", int, 4),
    Arg("roi_max_level", int, 5),
    Arg("roi_min_level", int, 2),
    Arg("legacy_plus_one", bool, True),
)


@register_op("CollectRpnProposals", n_inputs=(2, -1), args=_RPN_ARGS)
def collect_rpn_proposals_op(*inputs: Tensor, **args) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.CollectRpnProposals``."""
    return (caffe2_torch_ops().CollectRpnProposals(list(inputs), **args),)


@register_op("DistributeFpnProposals", n_inputs=(1, 1), n_outputs=(2, -1), args=_ROI_ARGS)
def distribute_fpn_proposals_op(rois: Tensor, **args) -> tuple[Tensor, ...]:
    """Runtime entry: level rois then the restore index."""
    if args["roi_max_level"] - args["roi_min_level"] + 1 == SCHEMA_ROI_LEVELS:
        return tuple(caffe2_torch_ops().DistributeFpnProposals(rois, **args))
    return tuple(distribute_fpn_proposals(rois, **args))


@register_op("CollectAndDistributeFpnRpnProposals", n_inputs=(2, -1), n_outputs=(3, -1), args=_ROI_ARGS + _RPN_ARGS)
def collect_and_distribute_fpn_rpn_proposals_op(*inputs: Tensor, **args) -> tuple[Tensor, ...]:
    """Runtime entry: collected rois, level rois, then the restore index."""
    if args["roi_max_level"] - args["roi_min_level"] + 1 == SCHEMA_ROI_LEVELS:
        return tuple(caffe2_torch_ops().CollectAndDistributeFpnRpnProposals(list(inputs), **args))
    return tuple(collect_and_distribute_fpn_rpn_proposals(list(inputs), **args))
