"""Softmax, LogSoftmax -> Caffe2 Softmax (+ Log) (SPEC 5.15, 5.16).

Caffe2's Softmax flattens the input to 2-D at ``axis`` like ONNX before opset 13. From opset 13
ONNX normalises along the single ``axis``: the same thing when ``axis`` is the last dim, otherwise
the axis is swapped to the end around the Softmax.
"""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


def _softmax(node: onnx.NodeProto, ctx: ConversionContext, x: str, y: str, axis: int) -> list[caffe2_pb2.OperatorDef]:
    """``Softmax`` (or ``Softmax`` then ``Log`` for LogSoftmax) reading ``x``, writing ``y``."""
    if node.op_type == "Softmax":
        return [c2_op(node, "Softmax", inputs=[x], outputs=[y], axis=axis)]
    probs = ctx.new_blob(f"{y}_softmax")
    return [
        c2_op(node, "Softmax", inputs=[x], outputs=[probs], axis=axis),
        c2_op(node, "Log", inputs=[probs], outputs=[y]),
    ]


@converts("Softmax", "LogSoftmax")
def convert_softmax_2d(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axis = node_attributes(node).get("axis", 1)
    return _softmax(node, ctx, node.input[0], node.output[0], axis)


@converts("Softmax", "LogSoftmax", since=13)
def convert_softmax_axis(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    axis = node_attributes(node).get("axis", -1)
    x, y = node.input[0], node.output[0]
    rank = ctx.rank(x)
    if axis == -1 or (rank is not None and axis == rank - 1):
        return _softmax(node, ctx, x, y, axis)
    if rank is None:
        raise ctx.error(node, f"axis={axis} is not the last dim and the input rank is unknown")
    axis = ctx.canonical_axis(node, axis, x)
    perm = list(range(rank))
    perm[axis], perm[-1] = perm[-1], perm[axis]
    moved, normalized = ctx.new_blob(f"{x}_transposed"), ctx.new_blob(f"{y}_transposed")
    return [
        c2_op(node, "Transpose", inputs=[x], outputs=[moved], axes=perm),
        *_softmax(node, ctx, moved, normalized, rank - 1),
        c2_op(node, "Transpose", inputs=[normalized], outputs=[y], axes=perm),
    ]
