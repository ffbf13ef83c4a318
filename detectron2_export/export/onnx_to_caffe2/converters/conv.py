"""Conv, ConvTranspose -> Caffe2 Conv, ConvTranspose (SPEC 5.15, 5.16)."""

from __future__ import annotations

import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op


def spatial_args(node: onnx.NodeProto, ctx: ConversionContext, attrs: dict, weight: str | None = None) -> dict:
    """ONNX kernel_shape/strides/pads/dilations -> Caffe2 kernels/strides/pads/dilations.

    ``pads`` with one value per spatial dim is duplicated (begin == end); ``auto_pad`` other than
    NOTSET/VALID is refused since Caffe2 has no SAME padding. Without ``kernel_shape`` the kernel
    comes from the static shape of blob ``weight``.
    """
    auto_pad = attrs.get("auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.error(node, f"auto_pad={auto_pad!r}, expected 'NOTSET' or 'VALID' (give explicit pads)")
    args: dict = {}
    if "kernel_shape" in attrs:
        args["kernels"] = list(attrs["kernel_shape"])
    elif weight is not None:
        weight_shape = ctx.shape(weight)
        if weight_shape is None or any(d is None for d in weight_shape[2:]):
            raise ctx.error(node, "no kernel_shape and the weight shape is unknown")
        args["kernels"] = list(weight_shape[2:])
    for name in ("strides", "dilations"):
        if name in attrs:
            args[name] = list(attrs[name])
    pads = list(attrs.get("pads", []))
    if auto_pad == "VALID":
        pads = []
    if pads:
        n_spatial = len(args.get("kernels", pads[: len(pads) // 2]))
        args["pads"] = pads * 2 if len(pads) == n_spatial else pads
    return args


@converts("Conv")
def convert_conv(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    args = spatial_args(node, ctx, attrs, weight=node.input[1])
    return [c2_op(node, "Conv", **args, group=attrs.get("group", 1))]


@converts("ConvTranspose")
def convert_conv_transpose(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if "output_shape" in attrs:
        raise ctx.error(node, "output_shape is not supported, expected pads and output_padding")
    args = spatial_args(node, ctx, attrs, weight=node.input[1])
    if any(d != 1 for d in args.pop("dilations", [])):
        raise ctx.error(node, f"dilations={attrs['dilations']}, expected all 1 (Caffe2 ConvTranspose has none)")
    if "output_padding" in attrs:
        args["adjs"] = list(attrs["output_padding"])
    return [c2_op(node, "ConvTranspose", **args, group=attrs.get("group", 1))]
