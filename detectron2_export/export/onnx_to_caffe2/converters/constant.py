"""Constant, ConstantOfShape, Cast (SPEC 5.13, 5.16)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from ..tensors import caffe2_dtype, make_fill_op
from .common import c2_op

_VALUE_ATTRS = {
    "value_float": np.float32,
    "value_floats": np.float32,
    "value_int": np.int64,
    "value_ints": np.int64,
}


def _constant_value(node: onnx.NodeProto, ctx: ConversionContext) -> np.ndarray:
    attrs = node_attributes(node)
    if "value" in attrs:
        return attrs["value"]
    for name, dtype in _VALUE_ATTRS.items():
        if name in attrs:
            return np.asarray(attrs[name], dtype=dtype)
    if "value_string" in attrs or "value_strings" in attrs:
        return np.asarray(attrs.get("value_string", attrs.get("value_strings")), dtype=object)
    raise ctx.error(node, f"attributes {sorted(attrs)}, expected value or value_float(s)/value_int(s)/value_string(s)")


def _fill(node: onnx.NodeProto, ctx: ConversionContext, value: np.ndarray) -> list[caffe2_pb2.OperatorDef]:
    """A fill op for a value known now; it is dropped later if rules fold it away."""
    ctx.set_constant(node.output[0], value)
    ctx.constant_outputs.add(node.output[0])
    return [make_fill_op(node.output[0], value, name=node.name)]


@converts("Constant")
def convert_constant(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return _fill(node, ctx, _constant_value(node, ctx))


@converts("ConstantOfShape")
def convert_constant_of_shape(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    value = attrs["value"].reshape(()) if "value" in attrs else np.array(0.0, dtype=np.float32)
    shape = ctx.constant(node.input[0])
    if shape is not None:
        return _fill(node, ctx, np.full([int(d) for d in shape], value, dtype=value.dtype))
    dtype = caffe2_dtype(helper.np_dtype_to_tensor_dtype(value.dtype), f"ConstantOfShape {node.name!r}")
    return [c2_op(node, "ConstantFill", input_as_shape=1, value=value.item(), dtype=dtype)]


@converts("Cast")
def convert_cast(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    to = node_attributes(node)["to"]
    return [c2_op(node, "Cast", to=caffe2_dtype(to, f"Cast {node.name!r}"))]
