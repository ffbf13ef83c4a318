"""MaxPool, AveragePool, Global*Pool -> Caffe2 MaxPool / AveragePool (SPEC 5.15, 5.16)."""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op, node_outputs
from .conv import spatial_args


@converts("MaxPool", "AveragePool")
def convert_pool(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if attrs.get("ceil_mode", 0):
        raise ctx.error(node, "ceil_mode=1, expected 0 (Caffe2 pooling rounds the output size down)")
    if len(node_outputs(node)) > 1:
        raise ctx.error(node, "the Indices output is not supported, expected one output")
    args = spatial_args(node, ctx, attrs)
    if any(d != 1 for d in args.pop("dilations", [])):
        raise ctx.error(node, f"dilations={attrs['dilations']}, expected all 1")
    if attrs.get("count_include_pad", 0):
        args["count_include_pad"] = 1
    return [c2_op(node, node.op_type, **args)]


@converts("GlobalAveragePool", "GlobalMaxPool")
def convert_global_pool(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    op_type = node.op_type.replace("Global", "")
    return [c2_op(node, op_type, global_pooling=1)]
