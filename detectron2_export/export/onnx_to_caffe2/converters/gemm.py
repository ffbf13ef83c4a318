"""Gemm -> FC / FCTransposed (or MatMul + Add), MatMul -> BatchMatMul (SPEC 5.16)."""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


@converts("Gemm")
def convert_gemm(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    alpha, beta = attrs.get("alpha", 1.0), attrs.get("beta", 1.0)
    trans_a, trans_b = attrs.get("transA", 0), attrs.get("transB", 0)
    a, b = node.input[0], node.input[1]
    c = node.input[2] if ctx.has_input(node, 2) and beta != 0 else None
    ops: list[caffe2_pb2.OperatorDef] = []
    if alpha != 1:
        scaled_a = ctx.new_blob(f"{a}_scaled")
        ops.append(c2_op(node, "Scale", inputs=[a], outputs=[scaled_a], scale=alpha))
        a = scaled_a
    if c is not None and beta != 1:
        scaled_c = ctx.new_blob(f"{c}_scaled")
        ops.append(c2_op(node, "Scale", inputs=[c], outputs=[scaled_c], scale=beta))
        c = scaled_c
    if c is not None and not trans_a and ctx.rank(node.input[2]) == 1:
        return ops + [c2_op(node, "FC" if trans_b else "FCTransposed", inputs=[a, b, c])]
    if c is None:
        return ops + [c2_op(node, "MatMul", inputs=[a, b], trans_a=trans_a, trans_b=trans_b)]
    product = ctx.new_blob(f"{node.output[0]}_matmul")
    return ops + [
        c2_op(node, "MatMul", inputs=[a, b], outputs=[product], trans_a=trans_a, trans_b=trans_b),
        c2_op(node, "Add", inputs=[product, c]),
    ]


@converts("MatMul")
def convert_matmul(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, "BatchMatMul", broadcast=1)]
