"""Shape-manipulating ops: Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Split, Expand,
Tile, Shape (SPEC 5.15, 5.16)."""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


def _axes(node: onnx.NodeProto, ctx: ConversionContext, attrs: dict, since_input: int) -> list[int] | None:
    """``axes`` from the attribute, or from the constant second input from opset ``since_input``."""
    if ctx.opset < since_input:
        axes = attrs.get("axes")
    else:
        axes = ctx.static_input(node, 1, "axes")
    return None if axes is None else [int(a) for a in axes]


@converts("Flatten")
def convert_flatten(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axis = ctx.canonical_axis(node, node_attributes(node).get("axis", 1), node.input[0])
    return [c2_op(node, "Flatten", axis=axis)]


@converts("Reshape", since=5)
def convert_reshape(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    if node_attributes(node).get("allowzero", 0):
        shape = ctx.constant(node.input[1])
        if shape is None or (shape == 0).any():
            raise ctx.error(node, "allowzero=1 with a 0 (or unknown) target dim, expected 0 to copy the input dim")
    return [c2_op(node, "Reshape", outputs=[node.output[0], ctx.new_blob()])]


@converts("Transpose")
def convert_transpose(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    perm = node_attributes(node).get("perm")
    return [c2_op(node, "Transpose", axes=None if perm is None else list(perm))]


@converts("Squeeze")
def convert_squeeze(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axes = _axes(node, ctx, node_attributes(node), since_input=13)
    if axes is None:
        shape = ctx.shape(node.input[0])
        if shape is None or None in shape:
            raise ctx.error(node, "no axes and the input shape is unknown, expected explicit axes")
        axes = [i for i, d in enumerate(shape) if d == 1]
    dims = sorted(ctx.canonical_axis(node, a, node.input[0]) for a in axes)
    return [c2_op(node, "Squeeze", inputs=[node.input[0]], dims=dims)]


@converts("Unsqueeze")
def convert_unsqueeze(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axes = _axes(node, ctx, node_attributes(node), since_input=13)
    if axes is None:
        raise ctx.error(node, "axes are missing")
    dims = sorted(ctx.canonical_axis(node, a, node.input[0], extra=len(axes)) for a in axes)
    return [c2_op(node, "ExpandDims", inputs=[node.input[0]], dims=dims)]


@converts("Concat")
def convert_concat(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axis = node_attributes(node).get("axis", 1)
    return [c2_op(node, "Concat", outputs=[node.output[0], ctx.new_blob()], axis=axis)]


@converts("Split")
def convert_split(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if ctx.opset < 13:
        split = attrs.get("split")
    else:
        split = ctx.static_input(node, 1, "split")
    axis = attrs.get("axis", 0)
    if split is None:
        split = _equal_split(node, ctx, axis)
    return [
        c2_op(
            node, "Split", inputs=[node.input[0]], axis=axis, split=None if split is None else [int(s) for s in split]
        )
    ]


def _equal_split(node: onnx.NodeProto, ctx: ConversionContext, axis: int) -> list[int] | None:
    """Explicit sizes for an equal split when the dim is static (Caffe2 splits equally without them)."""
    shape = ctx.shape(node.input[0])
    n = len([o for o in node.output if o])
    if shape is None or shape[axis] is None or shape[axis] % n:
        return None
    return [shape[axis] // n] * n


@converts("Expand")
def convert_expand(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, "Expand")]


@converts("Tile", since=6)
def convert_tile(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return [c2_op(node, "NumpyTile")]


@converts("Shape")
def convert_shape(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    start, end = attrs.get("start", 0), attrs.get("end")
    if start == 0 and end is None:
        return [c2_op(node, "Shape")]
    rank = ctx.rank(node.input[0])
    if rank is None:
        raise ctx.error(node, f"start={start}, end={end} need the input rank, which is unknown")
    axes = list(range(rank))[slice(start, end)]
    return [c2_op(node, "Shape", axes=axes)]
