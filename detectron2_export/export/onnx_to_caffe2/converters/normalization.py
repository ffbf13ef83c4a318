"""BatchNormalization -> SpatialBN (test mode), InstanceNormalization -> GroupNorm (SPEC 5.12, 5.16).

PyTorch exports ``group_norm`` as InstanceNormalization over a (N, G, -1) view. Instance norm is a
group norm with one channel per group, so it becomes Caffe2's ``GroupNorm`` with ``group`` = the
channel count (known from the scale's static shape), falling back to Caffe2's ``InstanceNorm``. An
``ATen`` group_norm node is handled by the ``group_norm_replace_aten_with_caffe2`` pass instead.
"""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op, node_outputs


@converts("BatchNormalization")
def convert_batch_norm(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if attrs.get("training_mode", 0) or len(node_outputs(node)) > 1:
        raise ctx.error(node, "training-mode batch norm (running statistics outputs), expected inference mode")
    return [c2_op(node, "SpatialBN", is_test=1, epsilon=attrs.get("epsilon", 1e-5), order="NCHW")]


@converts("InstanceNormalization")
def convert_instance_norm(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    epsilon = node_attributes(node).get("epsilon", 1e-5)
    scale_shape = ctx.shape(node.input[1])
    if scale_shape is None or len(scale_shape) != 1 or scale_shape[0] is None:
        return [c2_op(node, "InstanceNorm", epsilon=epsilon, order="NCHW")]
    return [c2_op(node, "GroupNorm", group=scale_shape[0], epsilon=epsilon, order="NCHW")]
