"""Caffe2 custom ops and ATen fallback nodes: same op type, attributes -> arguments (SPEC 4.1, 5.16).

PyTorch exports ``torch.ops._caffe2.X`` as node ``X`` in a domain named after the ``_caffe2``
namespace, each scalar argument an attribute named as in the op schema. ``ATen`` nodes (ops
PyTorch could only export as a call back into ATen) keep their ``operator`` attribute; the
``group_norm_replace_aten_with_caffe2`` pass turns the group_norm ones into ``GroupNorm``.
"""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext
from ..registry import ATEN_DOMAIN, CAFFE2_DOMAIN, converts
from .common import c2_op, node_outputs

CAFFE2_CUSTOM_OPS = (
    "AliasWithName",
    "BatchPermutation",
    "BBoxTransform",
    "BoxWithNMSLimit",
    "CollectAndDistributeFpnRpnProposals",
    "CollectRpnProposals",
    "CopyCPUToGPU",
    "CopyGPUToCPU",
    "DistributeFpnProposals",
    "GenerateProposals",
    "HeatmapMaxKeypoint",
    "ResizeNearest",
    "RoIAlign",
    "RoIAlignRotated",
)

_ATTRIBUTE_FIELDS = {
    onnx.AttributeProto.FLOAT: "f",
    onnx.AttributeProto.INT: "i",
    onnx.AttributeProto.STRING: "s",
    onnx.AttributeProto.FLOATS: "floats",
    onnx.AttributeProto.INTS: "ints",
    onnx.AttributeProto.STRINGS: "strings",
}


def attribute_to_argument(
    node: onnx.NodeProto, ctx: ConversionContext, attr: onnx.AttributeProto
) -> caffe2_pb2.Argument:
    """An ONNX attribute as the Caffe2 argument of the same name and kind."""
    field = _ATTRIBUTE_FIELDS.get(attr.type)
    if field is None:
        kind = onnx.AttributeProto.AttributeType.Name(attr.type)
        raise ctx.error(node, f"attribute {attr.name!r} of type {kind}, expected a number, string or list of those")
    arg = caffe2_pb2.Argument(name=attr.name)
    value = getattr(attr, field)
    if field in ("f", "i", "s"):
        setattr(arg, field, value)
    else:
        getattr(arg, field).extend(value)
    return arg


def _pass_through(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    op = c2_op(node, node.op_type, outputs=node_outputs(node))
    op.arg.extend(attribute_to_argument(node, ctx, attr) for attr in node.attribute)
    return [op]


converts(*CAFFE2_CUSTOM_OPS, domain=CAFFE2_DOMAIN)(_pass_through)
converts("ATen", domain=ATEN_DOMAIN)(_pass_through)
converts("ATen")(_pass_through)
