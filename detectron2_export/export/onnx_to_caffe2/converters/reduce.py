"""Reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin (SPEC 5.15)."""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op

# opset from which ``axes`` is an input instead of an attribute
_AXES_AS_INPUT_SINCE = {"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18}


@converts(*_AXES_AS_INPUT_SINCE)
def convert_reduce(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if ctx.opset >= _AXES_AS_INPUT_SINCE[node.op_type]:
        axes = ctx.static_input(node, 1, "axes")
        if axes is None and attrs.get("noop_with_empty_axes", 0):
            return [c2_op(node, "Copy", inputs=[node.input[0]])]
    else:
        axes = attrs.get("axes")
    if axes is not None:
        axes = [ctx.canonical_axis(node, int(a), node.input[0]) for a in axes]
    return [c2_op(node, node.op_type, inputs=[node.input[0]], axes=axes, keepdims=attrs.get("keepdims", 1))]
