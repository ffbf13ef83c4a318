"""Single-op parity cases, one family at a time (names follow caffe2/ops/<family>.py).

Every case is one OperatorDef on seeded random inputs; the tests run it in the Python runtime and in
``caffe2_run_net`` and compare all outputs. Detection cases use detectron2's argument values.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.registry import get_op
from tests.caffe2.helpers import make_op

DENSE_ATOL = 1e-5
DETECTION_ATOL = 1e-4


@dataclass
class OpCase:
    name: str
    op_type: str
    inputs: list[np.ndarray]
    args: dict[str, Any] = field(default_factory=dict)
    num_outputs: int | None = None
    atol: float = DENSE_ATOL

    def net(self) -> caffe2_pb2.NetDef:
        lo, hi = get_op(self.op_type).n_outputs
        n_out = self.num_outputs if self.num_outputs is not None else (lo if hi == -1 else hi)
        ins = [f"X{i}" for i in range(len(self.inputs))]
        outs = [f"Y{i}" for i in range(n_out)]
        return caffe2_pb2.NetDef(
            name=self.name, op=[make_op(self.op_type, ins, outs, **self.args)], external_input=ins, external_output=outs
        )


def _rng(name: str) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(name.encode()))


def f32(rng: np.random.Generator, *shape: int, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def boxes_xyxy(rng: np.random.Generator, n: int, width: float, height: float, min_size: float = 1.0) -> np.ndarray:
    x1 = rng.uniform(0, width * 0.8, n)
    y1 = rng.uniform(0, height * 0.8, n)
    w = rng.uniform(min_size, width * 0.5, n)
    h = rng.uniform(min_size, height * 0.5, n)
    return np.stack([x1, y1, np.minimum(x1 + w, width - 1), np.minimum(y1 + h, height - 1)], 1).astype(np.float32)


def conv_cases() -> list[OpCase]:
    r = _rng("conv")
    x = f32(r, 2, 4, 9, 11)
    return [
        OpCase("Conv/stride_pad_dilation", "Conv", [x, f32(r, 6, 4, 3, 3), f32(r, 6)],
               dict(kernels=[3, 3], strides=[2, 1], pads=[1, 1, 1, 1], dilations=[1, 2])),
        OpCase("Conv/asymmetric_pads", "Conv", [x, f32(r, 5, 4, 3, 2)], dict(kernels=[3, 2], pads=[0, 1, 2, 0])),
        OpCase("Conv/group_per_dim_spelling", "Conv", [x, f32(r, 6, 2, 3, 3), f32(r, 6)],
               dict(kernel_h=3, kernel_w=3, pad_t=1, pad_l=1, pad_b=1, pad_r=1, group=2)),
        OpCase("Conv/1d_single_spelling", "Conv", [f32(r, 2, 3, 10), f32(r, 4, 3, 3), f32(r, 4)],
               dict(kernel=3, pad=1, stride=2)),
        OpCase("ConvTranspose/mask_head_upsample", "ConvTranspose", [x, f32(r, 4, 3, 2, 2), f32(r, 3)],
               dict(kernels=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])),
        OpCase("ConvTranspose/pads_adj_group", "ConvTranspose", [x, f32(r, 4, 3, 4, 4), f32(r, 6)],
               dict(kernels=[4, 4], strides=[2, 2], pads=[1, 1, 2, 1], adjs=[1, 0], group=2)),
    ]


def pool_cases() -> list[OpCase]:
    r = _rng("pool")
    x = f32(r, 2, 3, 9, 10)
    return [
        OpCase("MaxPool/k3s2p1", "MaxPool", [x], dict(kernels=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        OpCase("MaxPool/asymmetric_pads", "MaxPool", [x], dict(kernels=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1])),
        OpCase("MaxPool/global", "MaxPool", [x], dict(global_pooling=1)),
        OpCase("AveragePool/exclude_pad", "AveragePool", [x], dict(kernels=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
        OpCase("AveragePool/include_pad", "AveragePool", [x],
               dict(kernels=[3, 3], strides=[1, 1], pads=[1, 2, 1, 0], count_include_pad=1)),
        OpCase("AveragePool/asymmetric_exclude_pad", "AveragePool", [x], dict(kernels=[3, 3], pads=[0, 2, 1, 0])),
        OpCase("AveragePool/global", "AveragePool", [x], dict(global_pooling=1)),
    ]


def elementwise_cases() -> list[OpCase]:
    r = _rng("elementwise")
    a, b = f32(r, 2, 3, 4, 5), f32(r, 2, 3, 4, 5)
    ints_a = r.integers(-20, 20, (3, 4)).astype(np.int32)
    ints_b = r.integers(1, 7, (3, 4)).astype(np.int32) * np.where(r.random((3, 4)) < 0.5, -1, 1).astype(np.int32)
    bool_a, bool_b = r.random((3, 4)) < 0.5, r.random((3, 4)) < 0.5
    cases = [
        OpCase("Add/numpy_broadcast", "Add", [a, f32(r, 4, 1)]),
        OpCase("Sub/legacy_broadcast_axis", "Sub", [a, f32(r, 3, 4)], dict(broadcast=1, axis=1)),
        OpCase("Mul/legacy_broadcast_suffix", "Mul", [a, f32(r, 4, 5)], dict(broadcast=1)),
        OpCase("Div/float", "Div", [a, np.abs(b) + 0.5]),
        OpCase("Div/int_truncates", "Div", [ints_a, ints_b]),
        OpCase("And/bool", "And", [bool_a, bool_b]),
        OpCase("Or/bool", "Or", [bool_a, bool_b]),
        OpCase("Xor/bool", "Xor", [bool_a, bool_b]),
        OpCase("Sum/three", "Sum", [a, b, f32(r, 2, 3, 4, 5)]),
        OpCase("Max/two", "Max", [a, b]),
        OpCase("Min/two", "Min", [a, b]),
        OpCase("LeakyRelu/alpha", "LeakyRelu", [a], dict(alpha=0.2)),
        OpCase("Pow/argument", "Pow", [np.abs(a) + 0.1], dict(exponent=2.5)),
        OpCase("Pow/input_broadcast", "Pow", [np.abs(a) + 0.1, f32(r, 5)], dict(broadcast=1)),
        OpCase("Clip/float", "Clip", [a], dict(min=-0.5, max=0.7)),
        OpCase("Clip/int_bounds", "Clip", [ints_a], dict(min=-3, max=4)),
        OpCase("Scale/float", "Scale", [a], dict(scale=0.37)),
        OpCase("Softmax/axis1", "Softmax", [a]),
        OpCase("Softmax/axis2", "Softmax", [a], dict(axis=2)),
        OpCase("Dropout/test", "Dropout", [a], dict(is_test=1)),
    ]
    for op in ("EQ", "NE", "LT", "LE", "GT", "GE"):
        cases.append(OpCase(f"{op}/float", op, [a, np.where(r.random(a.shape) < 0.3, a, b)]))
    positive = np.abs(a) + 0.1
    for op in ("Relu", "Sigmoid", "Tanh", "Exp", "Sqr", "Negative", "Abs", "Floor", "Ceil", "Sign"):
        cases.append(OpCase(f"{op}/float", op, [a]))
    for op in ("Log", "Sqrt", "Reciprocal"):
        cases.append(OpCase(f"{op}/positive", op, [positive]))
    cases.append(OpCase("Not/bool", "Not", [bool_a]))
    return cases


def linear_cases() -> list[OpCase]:
    r = _rng("linear")
    return [
        OpCase("FC/4d_input", "FC", [f32(r, 3, 4, 2, 2), f32(r, 5, 16), f32(r, 5)]),
        OpCase("FC/axis2", "FC", [f32(r, 2, 3, 6), f32(r, 4, 6), f32(r, 4)], dict(axis=2)),
        OpCase("FCTransposed/basic", "FCTransposed", [f32(r, 3, 6), f32(r, 6, 4), f32(r, 4)]),
        OpCase("MatMul/trans_b", "MatMul", [f32(r, 3, 5), f32(r, 4, 5)], dict(trans_b=1)),
        OpCase("BatchMatMul/batched", "BatchMatMul", [f32(r, 2, 3, 5), f32(r, 2, 5, 4)]),
        OpCase("BatchMatMul/broadcast_trans_a", "BatchMatMul", [f32(r, 2, 5, 3), f32(r, 5, 4)],
               dict(trans_a=1, broadcast=1)),
    ]


def normalization_cases() -> list[OpCase]:
    r = _rng("normalization")
    x = f32(r, 2, 6, 5, 4)
    return [
        OpCase("SpatialBN/test", "SpatialBN", [x, f32(r, 6), f32(r, 6), f32(r, 6), np.abs(f32(r, 6)) + 0.5],
               dict(is_test=1, epsilon=1e-3)),
        OpCase("AffineChannel/basic", "AffineChannel", [x, f32(r, 6), f32(r, 6)]),
        OpCase("GroupNorm/three_outputs", "GroupNorm", [x, f32(r, 6), f32(r, 6)], dict(group=3)),
    ]


def pad_cases() -> list[OpCase]:
    r = _rng("pad")
    x = f32(r, 1, 2, 5, 6)
    return [
        OpCase("PadImage/constant", "PadImage", [x], dict(pads=[1, 2, 0, 3], value=1.5)),
        OpCase("PadImage/reflect", "PadImage", [x], dict(pads=[2, 1, 1, 2], mode="reflect")),
        OpCase("PadImage/edge", "PadImage", [x], dict(pad=2, mode="edge")),
    ]


def reduce_cases() -> list[OpCase]:
    r = _rng("reduce")
    x = f32(r, 2, 3, 4, 5)
    return [
        OpCase("ReduceMean/spatial_no_keepdims", "ReduceMean", [x], dict(axes=[2, 3], keepdims=0)),
        OpCase("ReduceSum/all", "ReduceSum", [x]),
        OpCase("ReduceMax/negative_axis", "ReduceMax", [x], dict(axes=[-1])),
        OpCase("ReduceMin/axis1", "ReduceMin", [x], dict(axes=[1])),
    ]


def resize_cases() -> list[OpCase]:
    r = _rng("resize")
    x = f32(r, 1, 3, 5, 7)
    return [
        OpCase("ResizeNearest/x2", "ResizeNearest", [x], dict(width_scale=2.0, height_scale=2.0)),
        OpCase("ResizeNearest/fractional", "ResizeNearest", [x], dict(width_scale=1.5, height_scale=0.6)),
        OpCase("ResizeNearest/scales_input", "ResizeNearest", [x, np.array([3.0, 2.0], np.float32)]),
        OpCase("ResizeNearest/nhwc", "ResizeNearest", [f32(r, 1, 4, 5, 3)],
               dict(width_scale=2.0, height_scale=3.0, order="NHWC")),
        OpCase("UpsampleNearest/scale3", "UpsampleNearest", [x], dict(scale=3)),
        OpCase("UpsampleBilinear/x2", "UpsampleBilinear", [x], dict(width_scale=2.0, height_scale=2.0)),
        OpCase("UpsampleBilinear/scales_input", "UpsampleBilinear", [x, np.array([1.5, 2.5], np.float32)]),
    ]


def shape_cases() -> list[OpCase]:
    r = _rng("shape")
    x = f32(r, 2, 3, 4, 5)
    return [
        OpCase("Reshape/zero_and_infer", "Reshape", [x], dict(shape=[0, -1, 5])),
        OpCase("Reshape/shape_input", "Reshape", [x, np.array([6, 20], np.int64)]),
        OpCase("Flatten/axis2", "Flatten", [x], dict(axis=2)),
        OpCase("Concat/axis1", "Concat", [x, f32(r, 2, 2, 4, 5)], dict(axis=1)),
        OpCase("Concat/add_axis", "Concat", [x, x * 2], dict(axis=0, add_axis=1)),
        OpCase("Concat/order_nhwc", "Concat", [x, f32(r, 2, 3, 4, 2)], dict(order="NHWC")),
        OpCase("Split/argument", "Split", [x], dict(axis=3, split=[1, 3, 1]), num_outputs=3),
        OpCase("Split/input", "Split", [x, np.array([1, 2], np.int32)], dict(axis=1), num_outputs=2),
        OpCase("Transpose/axes", "Transpose", [x], dict(axes=[0, 2, 3, 1])),
        OpCase("Transpose/reverse", "Transpose", [x]),
        OpCase("Squeeze/dims", "Squeeze", [f32(r, 1, 3, 1, 2)], dict(dims=[0, 2])),
        OpCase("ExpandDims/dims", "ExpandDims", [f32(r, 3, 2)], dict(dims=[0, 3])),
        OpCase("Shape/all", "Shape", [x]),
        OpCase("Shape/axes", "Shape", [x], dict(axes=[1, -1])),
        OpCase("Slice/arguments_negative_end", "Slice", [x], dict(starts=[0, 1, 1], ends=[-1, 3, -2])),
        OpCase("Slice/inputs", "Slice", [x, np.array([1, 0], np.int64), np.array([2, -1], np.int64)]),
        OpCase("Gather/int32_axis0", "Gather", [x, np.array([[1, 0], [0, 1]], np.int32)]),
        OpCase("Gather/wrap_axis2", "Gather", [x, np.array([-1, 2, 0], np.int64)], dict(axis=2, wrap_indices=1)),
        OpCase("BatchGather/basic", "BatchGather", [x, np.array([2, 0, 2], np.int64)]),
        OpCase("ScatterAssign/rows", "ScatterAssign", [f32(r, 5, 3), np.array([4, 0], np.int64), f32(r, 2, 3)]),
        OpCase("Cast/float_to_int32", "Cast", [x * 5], dict(to=2)),
        OpCase("Cast/int_to_float", "Cast", [np.arange(6, dtype=np.int64)], dict(to=1)),
        OpCase("Cast/to_bool", "Cast", [np.array([0.0, 1.5, -2.0], np.float32)], dict(to=5)),
        OpCase("NumpyTile/basic", "NumpyTile", [f32(r, 2, 3), np.array([2, 1], np.int64)]),
        OpCase("Expand/broadcast", "Expand", [f32(r, 3, 1), np.array([2, 3, 4], np.int64)]),
    ]


def fill_cases() -> list[OpCase]:
    r = _rng("fill")
    return [
        OpCase("GivenTensorFill/float", "GivenTensorFill", [], dict(values=f32(r, 6), shape=[2, 3])),
        OpCase("GivenTensorDoubleFill/double", "GivenTensorDoubleFill", [], dict(values=[0.1, 0.2, 0.3], shape=[3])),
        OpCase("GivenTensorIntFill/int32", "GivenTensorIntFill", [], dict(values=[1, -2, 3, 4], shape=[2, 2])),
        OpCase("GivenTensorInt64Fill/int64", "GivenTensorInt64Fill", [], dict(values=[2**40, -5], shape=[2])),
        OpCase("GivenTensorBoolFill/bool", "GivenTensorBoolFill", [], dict(values=[1, 0, 1], shape=[3])),
        OpCase("GivenTensorFill/scalar_shape", "GivenTensorFill", [], dict(values=[2.5], shape=[])),
        OpCase("GivenTensorStringFill/one_string", "GivenTensorStringFill", [],
               dict(values=[b"\x01\x02\xff"], shape=[1])),
        OpCase("ConstantFill/shape_float", "ConstantFill", [], dict(shape=[2, 3], value=1.5)),
        OpCase("ConstantFill/int_value_int64", "ConstantFill", [], dict(shape=[4], value=7)),
        OpCase("ConstantFill/dtype_int32", "ConstantFill", [], dict(shape=[2], value=3.0, dtype=2)),
        OpCase("ConstantFill/like_input_extra", "ConstantFill", [f32(r, 2, 3)], dict(value=-1.0, extra_shape=[2])),
        OpCase("ConstantFill/input_as_shape", "ConstantFill", [np.array([3, 2], np.int64)],
               dict(input_as_shape=1, value=2.0)),
    ]


def copy_cases() -> list[OpCase]:
    r = _rng("copy")
    x = f32(r, 3, 4)
    cases = [OpCase(f"{op}/identity", op, [x]) for op in
             ("Copy", "Alias", "StopGradient", "EnsureCPUOutput", "CopyGPUToCPU", "CopyCPUToGPU", "CopyFromCPUInput")]
    cases.append(OpCase("AliasWithName/identity", "AliasWithName", [x], dict(name="bbox_nms", is_backward=0)))
    cases.append(OpCase("BatchPermutation/rows", "BatchPermutation",
                        [f32(r, 4, 2, 3, 3), np.array([2, 0, 3, 1], np.int32)]))
    cases.append(OpCase("BatchPermutation/empty", "BatchPermutation",
                        [np.zeros((0, 2, 3, 3), np.float32), np.zeros(0, np.int32)]))
    return cases


def _anchors(num: int, box_dim: int, rng: np.random.Generator) -> np.ndarray:
    sizes = rng.uniform(8, 40, num)
    ratios = rng.uniform(0.5, 2.0, num)
    w, h = sizes * np.sqrt(ratios), sizes / np.sqrt(ratios)
    if box_dim == 4:
        return np.stack([-w / 2, -h / 2, w / 2, h / 2], 1).astype(np.float32)
    return np.stack([np.zeros(num), np.zeros(num), w, h, rng.uniform(-60, 60, num)], 1).astype(np.float32)


D2_PROPOSAL_ARGS = dict(spatial_scale=0.25, pre_nms_topN=120, post_nms_topN=40, nms_thresh=0.7, min_size=0.0,
                        angle_bound_on=1, angle_bound_lo=-180, angle_bound_hi=180, clip_angle_thresh=1.0,
                        legacy_plus_one=0)


def generate_proposals_cases() -> list[OpCase]:
    r = _rng("generate_proposals")
    n, a, h, w = 2, 3, 8, 10
    im_info = np.array([[30.0, 38.0, 1.0], [32.0, 40.0, 1.0]], np.float32)
    cases = []
    for box_dim in (4, 5):
        scores = f32(r, n, a, h, w)
        deltas = f32(r, n, a * box_dim, h, w, scale=0.3)
        anchors = _anchors(a, box_dim, r)
        kind = "upright" if box_dim == 4 else "rotated"
        cases.append(OpCase(f"GenerateProposals/{kind}_detectron2_args", "GenerateProposals",
                            [scores, deltas, im_info, anchors], dict(D2_PROPOSAL_ARGS), atol=DETECTION_ATOL))
    scores = f32(r, n, a, h, w)
    cases.append(OpCase("GenerateProposals/caffe2_defaults", "GenerateProposals",
                        [scores, f32(r, n, a * 4, h, w, scale=0.3), im_info * np.array([4, 4, 0.5], np.float32),
                         _anchors(a, 4, r) * 4], atol=DETECTION_ATOL))
    cases.append(OpCase("GenerateProposals/all_anchors_no_topn", "GenerateProposals",
                        [scores, f32(r, n, a * 4, h, w, scale=0.3), im_info, _anchors(a, 4, r)],
                        dict(D2_PROPOSAL_ARGS, pre_nms_topN=-1, post_nms_topN=-1), atol=DETECTION_ATOL))
    return cases


def bbox_transform_cases() -> list[OpCase]:
    r = _rng("bbox_transform")
    rois = np.concatenate([np.repeat([[0.0], [1.0]], 6, 0), boxes_xyxy(r, 12, 60, 50)], 1).astype(np.float32)
    im_info = np.array([[50.0, 60.0, 1.0], [48.0, 64.0, 0.8]], np.float32)
    rotated_rois = np.concatenate(
        [np.zeros((5, 1)), r.uniform(10, 40, (5, 2)), r.uniform(4, 20, (5, 2)), r.uniform(-30, 30, (5, 1))], 1
    ).astype(np.float32)
    return [
        OpCase("BBoxTransform/detectron2_args", "BBoxTransform", [rois, f32(r, 12, 4 * 3, scale=0.5), im_info],
               dict(weights=[10.0, 10.0, 5.0, 5.0], apply_scale=1, rotated=0, angle_bound_on=1, angle_bound_lo=-180,
                    angle_bound_hi=180, clip_angle_thresh=1.0, legacy_plus_one=0), atol=DETECTION_ATOL),
        OpCase("BBoxTransform/no_apply_scale_legacy", "BBoxTransform", [rois, f32(r, 12, 8, scale=0.5), im_info],
               dict(weights=[1.0, 2.0, 3.0, 4.0], apply_scale=0), atol=DETECTION_ATOL),
        OpCase("BBoxTransform/no_batch_column", "BBoxTransform", [rois[:, 1:], f32(r, 12, 4, scale=0.5), im_info[:1]],
               atol=DETECTION_ATOL),
        OpCase("BBoxTransform/rotated", "BBoxTransform", [rotated_rois, f32(r, 5, 10, scale=0.3), im_info[:1]],
               dict(rotated=1, angle_bound_lo=-90, angle_bound_hi=90, clip_angle_thresh=10.0), atol=DETECTION_ATOL),
    ]


def _class_scores(rng: np.random.Generator, rows: int, classes: int) -> np.ndarray:
    logits = rng.standard_normal((rows, classes)) * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def _clustered_boxes(rng: np.random.Generator, rows: int, columns: int) -> np.ndarray:
    """Boxes jittered around a few centres, so that NMS suppresses."""
    centres = boxes_xyxy(rng, 4, 80, 60, min_size=10)[rng.integers(0, 4, rows * columns)]
    return (centres + rng.normal(0, 2.0, centres.shape)).astype(np.float32).reshape(rows, columns * 4)


D2_NMS_ARGS = dict(score_thresh=0.05, nms=0.5, detections_per_im=100, soft_nms_enabled=0, soft_nms_method="linear",
                   soft_nms_sigma=0.5, soft_nms_min_score_thres=0.001, rotated=0, cls_agnostic_bbox_reg=0,
                   input_boxes_include_bg_cls=0, output_classes_include_bg_cls=0, legacy_plus_one=0)


def box_with_nms_limit_cases() -> list[OpCase]:
    r = _rng("box_with_nms_limit")
    rows, classes = 40, 4
    scores = _class_scores(r, rows, classes + 1)
    boxes_fg = _clustered_boxes(r, rows, classes)
    splits = np.array([25.0, 15.0], np.float32)
    rotated = np.concatenate([r.uniform(20, 40, (rows, 2)), r.uniform(5, 15, (rows, 2)), r.uniform(-20, 20, (rows, 1))],
                             1).astype(np.float32)
    return [
        OpCase("BoxWithNMSLimit/detectron2_args", "BoxWithNMSLimit", [scores, boxes_fg, splits], dict(D2_NMS_ARGS),
               atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/topk_per_image", "BoxWithNMSLimit", [scores, boxes_fg, splits],
               dict(D2_NMS_ARGS, detections_per_im=6), atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/caffe2_defaults_no_splits", "BoxWithNMSLimit",
               [scores, _clustered_boxes(r, rows, classes + 1)], atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/class_agnostic", "BoxWithNMSLimit", [scores, boxes_fg[:, :4], splits],
               dict(D2_NMS_ARGS, cls_agnostic_bbox_reg=1), atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/soft_linear", "BoxWithNMSLimit", [scores, boxes_fg, splits],
               dict(D2_NMS_ARGS, soft_nms_enabled=1, soft_nms_method="linear", nms=0.3), atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/soft_gaussian", "BoxWithNMSLimit", [scores, boxes_fg, splits],
               dict(D2_NMS_ARGS, soft_nms_enabled=1, soft_nms_method="gaussian"), atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/rotated", "BoxWithNMSLimit", [scores[:, :2], rotated, splits],
               dict(D2_NMS_ARGS, rotated=1, nms=0.2), atol=DETECTION_ATOL),
        OpCase("BoxWithNMSLimit/nothing_above_threshold", "BoxWithNMSLimit", [scores, boxes_fg, splits],
               dict(D2_NMS_ARGS, score_thresh=0.999), atol=DETECTION_ATOL),
    ]


def roi_align_cases() -> list[OpCase]:
    r = _rng("roi_align")
    x = f32(r, 2, 3, 12, 16)
    rois = np.concatenate([r.integers(0, 2, (7, 1)), boxes_xyxy(r, 7, 32, 24)], 1).astype(np.float32)
    rois[0, 1:] = [-3.0, -2.0, 40.0, 30.0]  # beyond the feature map
    rotated = np.concatenate([r.integers(0, 2, (5, 1)), r.uniform(4, 28, (5, 2)), r.uniform(2, 14, (5, 2)),
                              r.uniform(-90, 90, (5, 1))], 1).astype(np.float32)
    return [
        OpCase("RoIAlign/aligned_adaptive", "RoIAlign", [x, rois],
               dict(order="NCHW", spatial_scale=0.5, pooled_h=7, pooled_w=5, sampling_ratio=0, aligned=1),
               atol=DETECTION_ATOL),
        OpCase("RoIAlign/unaligned_sampling2", "RoIAlign", [x, rois],
               dict(spatial_scale=0.5, pooled_h=3, pooled_w=3, sampling_ratio=2), atol=DETECTION_ATOL),
        OpCase("RoIAlign/four_columns", "RoIAlign", [x[:1], rois[:, 1:]],
               dict(spatial_scale=0.5, pooled_h=2, pooled_w=4, aligned=1), atol=DETECTION_ATOL),
        OpCase("RoIAlign/nhwc", "RoIAlign", [np.ascontiguousarray(x.transpose(0, 2, 3, 1)), rois],
               dict(order="NHWC", spatial_scale=0.5, pooled_h=4, pooled_w=4, aligned=1), atol=DETECTION_ATOL),
        OpCase("RoIAlign/no_rois", "RoIAlign", [x, np.zeros((0, 5), np.float32)], dict(pooled_h=7, pooled_w=7),
               atol=DETECTION_ATOL),
        OpCase("RoIAlignRotated/aligned", "RoIAlignRotated", [x, rotated],
               dict(spatial_scale=0.5, pooled_h=4, pooled_w=3, sampling_ratio=0, aligned=1), atol=DETECTION_ATOL),
        OpCase("RoIAlignRotated/unaligned_sampling2", "RoIAlignRotated", [x, rotated],
               dict(spatial_scale=0.5, pooled_h=2, pooled_w=2, sampling_ratio=2), atol=DETECTION_ATOL),
    ]


def _level_rois(rng: np.random.Generator, n: int, batch: int = 2) -> np.ndarray:
    return np.concatenate([rng.integers(0, batch, (n, 1)), boxes_xyxy(rng, n, 1600, 1200, min_size=2)], 1).astype(
        np.float32
    )


def fpn_proposals_cases() -> list[OpCase]:
    r = _rng("fpn_proposals")
    counts = [9, 7, 5, 3]
    rois = [_level_rois(r, n) for n in counts]
    scores = [r.standard_normal(n).astype(np.float32) for n in counts]
    scores[1][2] = scores[0][4]  # a tie across levels
    mixed = np.concatenate(rois)
    mixed[3, 1:] = [10.0, 10.0, 10.0, 10.0]  # zero area
    rpn = dict(rpn_max_level=5, rpn_min_level=2, rpn_post_nms_topN=15)
    roi = dict(roi_canonical_scale=224, roi_canonical_level=4, roi_max_level=5, roi_min_level=2, legacy_plus_one=0)
    return [
        OpCase("CollectRpnProposals/top15", "CollectRpnProposals", rois + scores, rpn, atol=DETECTION_ATOL),
        OpCase("CollectRpnProposals/keep_all", "CollectRpnProposals", rois + scores, dict(rpn, rpn_post_nms_topN=1000),
               atol=DETECTION_ATOL),
        OpCase("DistributeFpnProposals/four_levels", "DistributeFpnProposals", [mixed], roi, num_outputs=5,
               atol=DETECTION_ATOL),
        OpCase("DistributeFpnProposals/three_levels_legacy", "DistributeFpnProposals", [mixed[:, 1:]],
               dict(roi, roi_max_level=4, legacy_plus_one=1), num_outputs=4, atol=DETECTION_ATOL),
        OpCase("CollectAndDistributeFpnRpnProposals/four_levels", "CollectAndDistributeFpnRpnProposals", rois + scores,
               dict(rpn, **roi), num_outputs=6, atol=DETECTION_ATOL),
    ]


def heatmap_keypoint_cases() -> list[OpCase]:
    r = _rng("heatmap_keypoint")
    heatmaps = f32(r, 3, 4, 8, 8)
    heatmaps[0, 0, 0, 0] = 9.0  # maximum in a corner: mirrored neighbourhood
    heatmaps[1, 2, 7, 3] = 9.0  # on the bottom edge
    heatmaps[2, 1] = 1.0  # flat: singular fit
    boxes = np.concatenate([boxes_xyxy(r, 3, 100, 80), r.random((3, 1))], 1).astype(np.float32)
    return [
        OpCase("HeatmapMaxKeypoint/softmax", "HeatmapMaxKeypoint", [heatmaps, boxes], dict(should_output_softmax=1),
               atol=DETECTION_ATOL),
        OpCase("HeatmapMaxKeypoint/op_default", "HeatmapMaxKeypoint", [heatmaps, boxes[:, :4]], atol=DETECTION_ATOL),
    ]


def all_cases() -> list[OpCase]:
    return [
        *conv_cases(), *pool_cases(), *elementwise_cases(), *linear_cases(), *normalization_cases(), *pad_cases(),
        *reduce_cases(), *resize_cases(), *shape_cases(), *fill_cases(), *copy_cases(), *generate_proposals_cases(),
        *bbox_transform_cases(), *box_with_nms_limit_cases(), *roi_align_cases(), *fpn_proposals_cases(),
        *heatmap_keypoint_cases(),
    ]
