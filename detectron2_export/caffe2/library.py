"""The Caffe2 detection operators as torch operators: ``torch.ops._caffe2.<Op>`` (SPEC 5).

Each operator is defined once here with upstream's schema (argument names and order become the
ONNX attribute names and the Caffe2 argument names), with CPU and CUDA kernels from
``caffe2/ops/<family>.py`` and a fake (meta) kernel giving output shapes, so that the ops run
eagerly, record as ``_caffe2::<Op>`` nodes under ``torch.jit.trace`` / ``torch.jit.script``, and
trace through fake tensors. The Caffe2 runtime calls the same operators.

ONNX: PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``) handles the
``_caffe2`` namespace natively: its ``preprocess_caffe2`` pass turns the constant scalar arguments
into node attributes named after the schema (int/bool -> INT, float -> FLOAT, str -> STRING,
float[] -> FLOATS), expands ``Tensor[]`` into consecutive inputs, and the node is copied to the
model as op type ``<Op>`` in domain ``org.pytorch._caffe2`` (no symbolic function is consulted).
That pass cannot read a folded ``float[]`` constant (BBoxTransform's ``weights``); importing this
module installs a small graph fix-up in front of it (see ``_install_onnx_float_list_fix``).

Importing this module is idempotent: operators already defined are left alone.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from .ops.alias import alias_with_name
from .ops.batch_permutation import batch_permutation
from .ops.bbox_transform import bbox_transform
from .ops.box_with_nms_limit import box_with_nms_limit
from .ops.fpn_proposals import (
    collect_and_distribute_fpn_rpn_proposals_4,
    collect_rpn_proposals,
    distribute_fpn_proposals_4,
)
from .ops.generate_proposals import generate_proposals
from .ops.heatmap_keypoint import heatmap_max_keypoint
from .ops.resize import output_size, resize_nearest
from .ops.roi_align import roi_align, roi_align_rotated

NAMESPACE = "_caffe2"
ONNX_DOMAIN = "org.pytorch._caffe2"
"""Domain of the ``_caffe2`` nodes in models written by the TorchScript-based ONNX exporter."""

SCHEMAS: dict[str, str] = {
    "GenerateProposals": (
        "GenerateProposals(Tensor scores, Tensor bbox_deltas, Tensor im_info, Tensor anchors, "
        "float spatial_scale, int pre_nms_topN, int post_nms_topN, float nms_thresh, float min_size, "
        "bool angle_bound_on, int angle_bound_lo, int angle_bound_hi, float clip_angle_thresh, "
        "bool legacy_plus_one) -> (Tensor, Tensor)"
    ),
    "BBoxTransform": (
        "BBoxTransform(Tensor rois, Tensor deltas, Tensor im_info, float[] weights, bool apply_scale, "
        "bool rotated, bool angle_bound_on, int angle_bound_lo, int angle_bound_hi, "
        "float clip_angle_thresh, bool legacy_plus_one) -> (Tensor, Tensor)"
    ),
    "BoxWithNMSLimit": (
        "BoxWithNMSLimit(Tensor scores, Tensor boxes, Tensor batch_splits, float score_thresh, float nms, "
        "int detections_per_im, bool soft_nms_enabled, str soft_nms_method, float soft_nms_sigma, "
        "float soft_nms_min_score_thres, bool rotated, bool cls_agnostic_bbox_reg, "
        "bool input_boxes_include_bg_cls, bool output_classes_include_bg_cls, bool legacy_plus_one) -> "
        "(Tensor scores, Tensor boxes, Tensor classes, Tensor batch_splits, Tensor keeps, Tensor keeps_size)"
    ),
    "RoIAlign": (
        "RoIAlign(Tensor features, Tensor rois, str order, float spatial_scale, int pooled_h, int pooled_w, "
        "int sampling_ratio, bool aligned) -> Tensor"
    ),
    "RoIAlignRotated": (
        "RoIAlignRotated(Tensor features, Tensor rois, str order, float spatial_scale, int pooled_h, "
        "int pooled_w, int sampling_ratio, bool aligned) -> Tensor"
    ),
    "CollectRpnProposals": (
        "CollectRpnProposals(Tensor[] input_list, int rpn_max_level, int rpn_min_level, "
        "int rpn_post_nms_topN) -> Tensor"
    ),
    "DistributeFpnProposals": (
        "DistributeFpnProposals(Tensor rois, int roi_canonical_scale, int roi_canonical_level, "
        "int roi_max_level, int roi_min_level, bool legacy_plus_one) -> (Tensor rois_fpn2, Tensor rois_fpn3, "
        "Tensor rois_fpn4, Tensor rois_fpn5, Tensor rois_idx_restore_int32)"
    ),
    "CollectAndDistributeFpnRpnProposals": (
        "CollectAndDistributeFpnRpnProposals(Tensor[] input_list, int roi_canonical_scale, "
        "int roi_canonical_level, int roi_max_level, int roi_min_level, int rpn_max_level, int rpn_min_level, "
        "int rpn_post_nms_topN, bool legacy_plus_one) -> (Tensor rois, Tensor rois_fpn2, Tensor rois_fpn3, "
        "Tensor rois_fpn4, Tensor rois_fpn5, Tensor rois_idx_restore_int32)"
    ),
    "BatchPermutation": "BatchPermutation(Tensor X, Tensor indices) -> Tensor",
    "AliasWithName": "AliasWithName(Tensor input, str name, bool is_backward=False) -> Tensor",
    "HeatmapMaxKeypoint": (
        "HeatmapMaxKeypoint(Tensor heatmaps, Tensor bboxes_in, bool should_output_softmax=True) -> Tensor keypoints"
    ),
    "ResizeNearest": "ResizeNearest(Tensor X, str order, float width_scale, float height_scale) -> Tensor",
    "CopyCPUToGPU": "CopyCPUToGPU(Tensor input) -> Tensor",
    "CopyGPUToCPU": "CopyGPUToCPU(Tensor input) -> Tensor",
}


# ---------------------------------------------------------------------------------------------
# Kernels that live here (device copies) and fake kernels (output shapes only)
# ---------------------------------------------------------------------------------------------


def _copy_to(device: str) -> Callable[[Tensor], Tensor]:
    def copy(input: Tensor) -> Tensor:
        return input.to(device, copy=True)

    return copy


def _dynamic() -> torch.SymInt:
    return torch.library.get_ctx().new_dynamic_size()


def _fake_generate_proposals(scores, bbox_deltas, im_info, anchors, *args):
    n = _dynamic()
    return scores.new_empty((n, anchors.shape[1] + 1)), scores.new_empty((n,))


def _fake_bbox_transform(rois, deltas, im_info, *args):
    return deltas.new_empty(deltas.shape), deltas.new_empty((im_info.shape[0],))


def _fake_box_with_nms_limit(scores, boxes, batch_splits, score_thresh, nms, detections_per_im, soft_nms_enabled,
                             soft_nms_method, soft_nms_sigma, soft_nms_min_score_thres, rotated, *layout_args):
    n = _dynamic()
    num_images = batch_splits.shape[0]
    return (
        scores.new_empty((n,)),
        boxes.new_empty((n, 5 if rotated else 4)),
        scores.new_empty((n,)),
        scores.new_empty((num_images,)),
        scores.new_empty((n,), dtype=torch.int32),
        scores.new_empty((num_images, scores.shape[1]), dtype=torch.int32),
    )


def _fake_roi_align(features, rois, order, spatial_scale, pooled_h, pooled_w, sampling_ratio, aligned):
    if order == "NHWC":
        return features.new_empty((rois.shape[0], pooled_h, pooled_w, features.shape[3]))
    return features.new_empty((rois.shape[0], features.shape[1], pooled_h, pooled_w))


def _collected_count(input_list, rpn_max_level, rpn_min_level, rpn_post_nms_topN):
    num_levels = rpn_max_level - rpn_min_level + 1
    total = sum(r.shape[0] for r in input_list[:num_levels])
    return torch.sym_min(total, rpn_post_nms_topN) if rpn_post_nms_topN > 0 else total


def _fake_collect_rpn_proposals(input_list, rpn_max_level, rpn_min_level, rpn_post_nms_topN):
    n = _collected_count(input_list, rpn_max_level, rpn_min_level, rpn_post_nms_topN)
    return input_list[0].new_empty((n, 5))


def _fake_levels(rois: Tensor, num_rois) -> tuple[Tensor, ...]:
    levels = tuple(rois.new_empty((_dynamic(), 5)) for _ in range(4))
    return levels + (rois.new_empty((num_rois,), dtype=torch.int32),)


def _fake_distribute_fpn_proposals(rois, *args):
    return _fake_levels(rois, rois.shape[0])


def _fake_collect_and_distribute(input_list, roi_canonical_scale, roi_canonical_level, roi_max_level,
                                 roi_min_level, rpn_max_level, rpn_min_level, rpn_post_nms_topN, legacy_plus_one):
    n = _collected_count(input_list, rpn_max_level, rpn_min_level, rpn_post_nms_topN)
    rois = input_list[0].new_empty((n, 5))
    return (rois,) + _fake_levels(rois, n)


def _fake_like_first(x, *args):
    return x.new_empty(x.shape)


def _fake_heatmap_max_keypoint(heatmaps, bboxes_in, should_output_softmax=True):
    return heatmaps.new_empty((heatmaps.shape[0], 4, heatmaps.shape[1]))


def _fake_resize_nearest(X, order, width_scale, height_scale):
    h_axis, w_axis = (2, 3) if order == "NCHW" else (1, 2)
    shape = list(X.shape)
    shape[h_axis] = output_size(int(shape[h_axis]), height_scale)
    shape[w_axis] = output_size(int(shape[w_axis]), width_scale)
    return X.new_empty(shape)


def _fake_copy_to(device: str) -> Callable[[Tensor], Tensor]:
    def fake(input: Tensor) -> Tensor:
        return input.new_empty(input.shape, device=device)

    return fake


_IMPLS: dict[str, tuple[Callable, Callable]] = {
    "GenerateProposals": (generate_proposals, _fake_generate_proposals),
    "BBoxTransform": (bbox_transform, _fake_bbox_transform),
    "BoxWithNMSLimit": (box_with_nms_limit, _fake_box_with_nms_limit),
    "RoIAlign": (roi_align, _fake_roi_align),
    "RoIAlignRotated": (roi_align_rotated, _fake_roi_align),
    "CollectRpnProposals": (collect_rpn_proposals, _fake_collect_rpn_proposals),
    "DistributeFpnProposals": (distribute_fpn_proposals_4, _fake_distribute_fpn_proposals),
    "CollectAndDistributeFpnRpnProposals": (collect_and_distribute_fpn_rpn_proposals_4, _fake_collect_and_distribute),
    "BatchPermutation": (batch_permutation, _fake_like_first),
    "AliasWithName": (alias_with_name, _fake_like_first),
    "HeatmapMaxKeypoint": (heatmap_max_keypoint, _fake_heatmap_max_keypoint),
    "ResizeNearest": (resize_nearest, _fake_resize_nearest),
    "CopyCPUToGPU": (_copy_to("cuda"), _fake_copy_to("cuda")),
    "CopyGPUToCPU": (_copy_to("cpu"), _fake_copy_to("cpu")),
}


def is_defined(name: str) -> bool:
    """Whether ``_caffe2::<name>`` exists in the dispatcher."""
    return bool(torch._C._jit_get_schemas_for_operator(f"{NAMESPACE}::{name}"))


# On re-execution of this module (importlib.reload) keep the Library that owns the registrations:
# dropping it would unregister every op.
_LIB: torch.library.Library = globals().get("_LIB") or torch.library.Library(NAMESPACE, "FRAGMENT")


def _define_all() -> None:
    for name, schema in SCHEMAS.items():
        if is_defined(name):
            continue
        kernel, fake = _IMPLS[name]
        _LIB.define(schema)
        for dispatch_key in ("CPU", "CUDA"):
            _LIB.impl(name, kernel, dispatch_key)
        torch.library.register_fake(f"{NAMESPACE}::{name}", fake, lib=_LIB)


# ---------------------------------------------------------------------------------------------
# ONNX export fix-up
# ---------------------------------------------------------------------------------------------


def _expand_float_list_constants(graph: torch._C.Graph, block: torch._C.Block) -> None:
    """Rebuild folded ``float[]`` constants feeding ``_caffe2`` nodes as ``prim::ListConstruct``."""
    float_list = torch._C.ListType.ofFloats()
    for node in block.nodes():
        for sub_block in node.blocks():
            _expand_float_list_constants(graph, sub_block)
        if not node.kind().startswith(f"{NAMESPACE}::"):
            continue
        for index, value in enumerate(list(node.inputs())):
            producer = value.node()
            if producer.kind() != "prim::Constant" or not value.type().isSubtypeOf(float_list):
                continue
            elements = []
            for element in value.toIValue():
                constant = graph.insertConstant(float(element))
                constant.node().moveBefore(node)
                elements.append(constant)
            list_node = graph.create("prim::ListConstruct", elements).insertBefore(node)
            list_node.output().setType(float_list)
            node.replaceInput(index, list_node.output())


def _install_onnx_float_list_fix() -> None:
    """Wrap ``torch._C._jit_pass_onnx_preprocess_caffe2`` so that ``float[]`` arguments export.

    The exporter's constant propagation folds a traced ``float[]`` argument into one
    ``prim::Constant`` holding a list IValue, which ``preprocess_caffe2`` then rejects
    ("required keyword attribute 'value' has the wrong type"); it only accepts a list of float
    constants. The wrapper restores that form for ``_caffe2`` nodes, then runs the original pass.
    """
    original = torch._C._jit_pass_onnx_preprocess_caffe2
    if getattr(original, "_detectron2_export_float_list_fix", False):
        return

    def preprocess_caffe2(graph: torch._C.Graph) -> None:
        _expand_float_list_constants(graph, graph.block())
        original(graph)

    preprocess_caffe2._detectron2_export_float_list_fix = True
    torch._C._jit_pass_onnx_preprocess_caffe2 = preprocess_caffe2


_define_all()
_install_onnx_float_list_fix()
