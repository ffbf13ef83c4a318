"""Pad of the two spatial dims of an NCHW tensor -> Caffe2 PadImage (SPEC 5.15, 5.16)."""

from __future__ import annotations

import numpy as np
import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


def _pad_image(
    node: onnx.NodeProto, ctx: ConversionContext, pads: list[int], mode: str, value: float
) -> list[caffe2_pb2.OperatorDef]:
    if len(pads) != 8 or any(pads[i] != 0 for i in (0, 1, 4, 5)):
        raise ctx.error(node, f"pads={pads}, expected 8 values padding only H and W of an NCHW tensor")
    if any(p < 0 for p in pads):
        raise ctx.error(node, f"pads={pads}, expected non-negative pads")
    if mode not in ("constant", "reflect", "edge"):
        raise ctx.error(node, f"mode={mode!r}, expected 'constant', 'reflect' or 'edge'")
    t, l, b, r = pads[2], pads[3], pads[6], pads[7]
    return [c2_op(node, "PadImage", inputs=[node.input[0]], pads=[t, l, b, r], mode=mode, value=value, order="NCHW")]


@converts("Pad", since=2)
def convert_pad_attributes(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    return _pad_image(node, ctx, list(attrs["pads"]), attrs.get("mode", "constant"), float(attrs.get("value", 0.0)))


@converts("Pad", since=11)
def convert_pad(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if ctx.has_input(node, 3):
        raise ctx.error(node, "the axes input is not supported, expected pads for every dim")
    pads = [int(p) for p in ctx.static_input(node, 1, "pads").reshape(-1)]
    value = ctx.static_input(node, 2, "constant_value")
    value = 0.0 if value is None else float(np.asarray(value).reshape(-1)[0])
    return _pad_image(node, ctx, pads, attrs.get("mode", "constant"), value)
