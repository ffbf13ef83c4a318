"""Elementwise ops: activations, arithmetic with NumPy broadcasting, comparisons, Clip, Pow (SPEC 5.16).

Caffe2 binary ops broadcast like NumPy when their legacy ``broadcast`` argument is absent, which is
ONNX's rule since opset 7, so arithmetic keeps its type and gets no argument.
"""

from __future__ import annotations

import numpy as np
import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op

_SAME_NAME = ("Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Abs", "Floor", "Ceil", "Not", "Sign")
_RENAMED = {"Neg": "Negative", "Identity": "Copy"}
_BINARY_SAME_NAME = ("Add", "Sub", "Mul", "Div", "And", "Or", "Xor")
_COMPARISONS = {"Equal": "EQ", "Less": "LT", "Greater": "GT", "LessOrEqual": "LE", "GreaterOrEqual": "GE"}
_VARIADIC = ("Sum", "Max", "Min")


@converts(*_SAME_NAME, *_RENAMED)
def convert_unary(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, _RENAMED.get(node.op_type, node.op_type))]


@converts(*_BINARY_SAME_NAME, *_COMPARISONS, since=7)
def convert_binary(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, _COMPARISONS.get(node.op_type, node.op_type))]


@converts(*_VARIADIC)
def convert_variadic(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    if len(node.input) == 1:
        return [c2_op(node, "Copy")]
    return [c2_op(node, node.op_type)]


@converts("Reciprocal")
def convert_reciprocal(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, "Pow", exponent=-1.0)]


@converts("Pow", since=7)
def convert_pow(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    exponent = ctx.constant(node.input[1])
    if exponent is not None and exponent.size == 1:
        return [c2_op(node, "Pow", inputs=[node.input[0]], exponent=float(exponent.item()))]
    return [c2_op(node, "Pow")]


@converts("Clip")
def convert_clip_attributes(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    return [c2_op(node, "Clip", min=attrs.get("min"), max=attrs.get("max"))]


@converts("Clip", since=11)
def convert_clip(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    bounds = {}
    for index, name in ((1, "min"), (2, "max")):
        value = ctx.static_input(node, index, name)
        if value is not None:
            bounds[name] = float(np.asarray(value).item())
    return [c2_op(node, "Clip", inputs=[node.input[0]], **bounds)]


@converts("Dropout")
def convert_dropout(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, "Dropout", inputs=[node.input[0]], is_test=1)]
