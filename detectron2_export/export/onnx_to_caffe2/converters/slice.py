"""Slice -> one Caffe2 Slice per sliced axis (SPEC 5.15, 5.16).

Caffe2's Slice takes ``starts``/``ends`` per leading dim, slices one dim at a time, and reads a
negative bound ``b`` as ``dim + 1 + b`` (so ``-1`` is the end). ONNX bounds must be constants
here (they are, in exported detection models); a bound is clamped to the dim when the dim is
static, otherwise ONNX's "to the end" sentinels (``>= 2**31 - 1``) map to ``-1`` and negative
bounds shift by one.
"""

from __future__ import annotations

import numpy as np
import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op

_TO_THE_END = 2**31 - 1


def _caffe2_bounds(start: int, end: int, dim: int | None) -> tuple[int, int]:
    if dim is not None:
        start = min(max(start + dim if start < 0 else start, 0), dim)
        end = min(max(end + dim if end < 0 else end, 0), dim)
        return start, max(start, end)
    c2_start = start - 1 if start < 0 else start
    c2_end = -1 if end >= _TO_THE_END else (end - 1 if end < 0 else end)
    return c2_start, c2_end


def _slice_ops(
    node: onnx.NodeProto, ctx: ConversionContext, starts: list, ends: list, axes: list | None, steps: list | None
) -> list[caffe2_pb2.OperatorDef]:
    data = node.input[0]
    if steps is not None and any(int(s) != 1 for s in steps):
        raise ctx.error(node, f"steps={list(steps)}, expected all 1 (Caffe2 Slice has no step)")
    axes = list(range(len(starts))) if axes is None else [ctx.canonical_axis(node, int(a), data) for a in axes]
    shape = ctx.shape(data)
    cuts = []
    for axis, start, end in sorted(zip(axes, starts, ends)):
        dim = shape[axis] if shape is not None else None
        c2_start, c2_end = _caffe2_bounds(int(start), int(end), dim)
        if (c2_start, c2_end) not in ((0, -1), (0, dim)):
            cuts.append((axis, c2_start, c2_end))
    if not cuts:
        return [c2_op(node, "Copy", inputs=[data])]
    ops = []
    current = data
    for i, (axis, c2_start, c2_end) in enumerate(cuts):
        n_dims = len(shape) if shape is not None else axis + 1
        out = node.output[0] if i == len(cuts) - 1 else ctx.new_blob(f"{node.output[0]}_axis{axis}")
        c2_starts, c2_ends = [0] * n_dims, [-1] * n_dims
        c2_starts[axis], c2_ends[axis] = c2_start, c2_end
        ops.append(c2_op(node, "Slice", inputs=[current], outputs=[out], starts=c2_starts, ends=c2_ends))
        current = out
    return ops


def _flat(value: np.ndarray | None) -> list | None:
    return None if value is None else np.asarray(value).reshape(-1).tolist()


@converts("Slice")
def convert_slice_attributes(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    return _slice_ops(node, ctx, attrs["starts"], attrs["ends"], attrs.get("axes"), None)


@converts("Slice", since=10)
def convert_slice(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    starts = ctx.static_input(node, 1, "starts")
    ends = ctx.static_input(node, 2, "ends")
    axes = ctx.static_input(node, 3, "axes")
    steps = ctx.static_input(node, 4, "steps")
    return _slice_ops(node, ctx, _flat(starts), _flat(ends), _flat(axes), _flat(steps))
