"""Gather -> Caffe2 Gather (axis 0) / BatchGather (axis 1) (SPEC 5.15, 5.16).

Caffe2 rejects negative indices; constant ones are wrapped here when the gathered dimension is
static, otherwise ``Gather`` gets ``wrap_indices``.
"""

from __future__ import annotations

import numpy as np
import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


@converts("Gather")
def convert_gather(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    data, indices = node.input[0], node.input[1]
    axis = ctx.canonical_axis(node, node_attributes(node).get("axis", 0), data)
    if axis not in (0, 1):
        raise ctx.error(node, f"axis={axis}, expected 0 (Gather) or 1 (BatchGather)")
    op_type = "Gather" if axis == 0 else "BatchGather"
    values = ctx.constant(indices)
    if values is None or not (values < 0).any():
        return [c2_op(node, op_type)]
    shape = ctx.shape(data)
    dim = None if shape is None else shape[axis]
    if dim is None and op_type == "Gather":
        return [c2_op(node, op_type, wrap_indices=1)]
    if dim is None:
        raise ctx.error(node, "negative indices into a dim of unknown size, expected non-negative indices")
    wrapped = ctx.add_initializer(f"{indices}_wrapped", np.where(values < 0, values + dim, values).astype(values.dtype))
    return [c2_op(node, op_type, inputs=[data, wrapped])]
