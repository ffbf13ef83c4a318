"""Resize / Upsample of NCHW images -> ResizeNearest, UpsampleBilinear, or an exact bilinear
decomposition (SPEC 5.11, 5.16, 10.3).

* nearest: ``ResizeNearest`` with ``height_scale``/``width_scale`` (PyTorch's nearest is ONNX's
  asymmetric + floor; for integer scales every nearest mode but align_corners agrees with it).
  Scales computed at run time go through ``Slice(scales, [2], [-1])`` into its second input.
* linear, align_corners: Caffe2's ``UpsampleBilinear`` (its source grid is align-corners).
* linear, half_pixel (PyTorch's ``align_corners=False``) with integer scales: Caffe2 has no such
  op, so the net does it exactly with stock ops: images flattened to one channel, edge-padded by
  one pixel, a transposed convolution with the separable bilinear kernel (stride = scale), the
  valid window cropped, and the result reshaped back to (N, C, H*sh, W*sw).
"""

from __future__ import annotations

import numpy as np
import onnx

from ....caffe2.proto import caffe2_pb2
from ..context import ConversionContext, node_attributes
from ..registry import converts
from .common import c2_op

_HALF_PIXEL_MODES = ("half_pixel", "pytorch_half_pixel")


def _spatial_scales(node: onnx.NodeProto, ctx: ConversionContext, scales: np.ndarray) -> tuple[float, float]:
    scales = np.asarray(scales, dtype=np.float64).reshape(-1)
    if scales.size != 4 or scales[0] != 1 or scales[1] != 1:
        raise ctx.error(node, f"scales={scales.tolist()}, expected [1, 1, height_scale, width_scale] (NCHW)")
    return float(scales[2]), float(scales[3])


def _scales_from_sizes(node: onnx.NodeProto, ctx: ConversionContext, sizes: np.ndarray) -> np.ndarray:
    shape = ctx.shape(node.input[0])
    sizes = np.asarray(sizes).reshape(-1)
    if shape is None or len(shape) != len(sizes) or any(d is None for d in shape):
        raise ctx.error(node, f"sizes={sizes.tolist()} given but the input shape is unknown, expected scales")
    return sizes.astype(np.float64) / np.asarray(shape, dtype=np.float64)


def _is_integral(scale: float) -> bool:
    return scale >= 1 and float(scale).is_integer()


def _nearest(
    node: onnx.NodeProto, ctx: ConversionContext, scales: tuple[float, float], floor_rule: bool
) -> list[caffe2_pb2.OperatorDef]:
    if not floor_rule and not all(_is_integral(s) for s in scales):
        raise ctx.error(node, f"scales={list(scales)} with this nearest mode, expected integers (or asymmetric+floor)")
    return [
        c2_op(
            node, "ResizeNearest", inputs=[node.input[0]], order="NCHW", height_scale=scales[0], width_scale=scales[1]
        )
    ]


def _nearest_dynamic(node: onnx.NodeProto, ctx: ConversionContext, scales_blob: str) -> list[caffe2_pb2.OperatorDef]:
    spatial = ctx.new_blob(f"{scales_blob}_hw")
    return [
        c2_op(node, "Slice", inputs=[scales_blob], outputs=[spatial], starts=[2], ends=[-1]),
        c2_op(node, "ResizeNearest", inputs=[node.input[0], spatial], order="NCHW"),
    ]


def bilinear_kernel_1d(scale: int) -> np.ndarray:
    """Weights of the transposed convolution that interpolates linearly by an integer ``scale``."""
    size = 2 * scale - scale % 2
    center = (size - 1) / 2
    return (1 - np.abs(np.arange(size) - center) / scale).astype(np.float32)


def _crop(node: onnx.NodeProto, x: str, out: str, axis: int, scale: int) -> caffe2_pb2.OperatorDef:
    """Keep the ``scale * n`` outputs of the transposed conv that line up with half-pixel sampling."""
    size = len(bilinear_kernel_1d(scale))
    offset = (3 * scale - scale % 2) // 2
    from_end = scale + size - offset  # the conv output is (n + 1) * scale + size long
    starts, ends = [0, 0, 0, 0], [-1, -1, -1, -1]
    starts[axis], ends[axis] = offset, -from_end - 1
    return c2_op(node, "Slice", inputs=[x], outputs=[out], starts=starts, ends=ends)


def _bilinear_half_pixel(
    node: onnx.NodeProto, ctx: ConversionContext, scales: tuple[float, float]
) -> list[caffe2_pb2.OperatorDef]:
    if not all(_is_integral(s) for s in scales):
        raise ctx.error(node, f"linear resize with scales={list(scales)}, expected integer scales >= 1")
    sh, sw = int(scales[0]), int(scales[1])
    x, y = node.input[0], node.output[0]
    kernel = np.outer(bilinear_kernel_1d(sh), bilinear_kernel_1d(sw))[None, None]
    weight = ctx.add_initializer(f"{y}_bilinear_kernel", kernel)
    bias = ctx.add_initializer(f"{y}_bilinear_bias", np.zeros(1, dtype=np.float32))
    factors = ctx.add_initializer(f"{y}_bilinear_factors", np.array([1, 1, sh, sw], dtype=np.int64))
    flat, padded, upsampled, rows, cropped, in_shape, out_shape = (
        ctx.new_blob(f"{y}_{step}") for step in ("flat", "padded", "up", "rows", "cropped", "in_shape", "out_shape")
    )
    return [
        c2_op(node, "Reshape", inputs=[x], outputs=[flat, ctx.new_blob()], shape=[-1, 1, 0, 0]),
        c2_op(node, "PadImage", inputs=[flat], outputs=[padded], pads=[1, 1, 1, 1], mode="edge", order="NCHW"),
        c2_op(
            node,
            "ConvTranspose",
            inputs=[padded, weight, bias],
            outputs=[upsampled],
            kernels=list(kernel.shape[2:]),
            strides=[sh, sw],
            pads=[0, 0, 0, 0],
            order="NCHW",
        ),
        _crop(node, upsampled, rows, 2, sh),
        _crop(node, rows, cropped, 3, sw),
        c2_op(node, "Shape", inputs=[x], outputs=[in_shape]),
        c2_op(node, "Mul", inputs=[in_shape, factors], outputs=[out_shape]),
        c2_op(node, "Reshape", inputs=[cropped, out_shape], outputs=[y, ctx.new_blob()]),
    ]


def _resize(
    node: onnx.NodeProto,
    ctx: ConversionContext,
    scales_input: int,
    mode: str,
    coordinates: str,
    nearest_mode: str,
    sizes_input: int | None = None,
) -> list[caffe2_pb2.OperatorDef]:
    if ctx.rank(node.input[0]) not in (None, 4):
        raise ctx.error(node, f"input rank {ctx.rank(node.input[0])}, expected 4 (NCHW)")
    has_scales = ctx.has_input(node, scales_input)
    scales = ctx.constant(node.input[scales_input]) if has_scales else None
    if has_scales and scales is None:
        if mode == "nearest" and coordinates == "asymmetric" and nearest_mode == "floor":
            return _nearest_dynamic(node, ctx, node.input[scales_input])
        raise ctx.error(node, f"mode={mode!r} with scales computed at run time, expected constant scales")
    if (scales is None or scales.size == 0) and sizes_input is not None and ctx.has_input(node, sizes_input):
        scales = _scales_from_sizes(node, ctx, ctx.static_input(node, sizes_input, "sizes"))
    if scales is None or scales.size == 0:
        raise ctx.error(node, "neither scales nor sizes are given")
    hw_scales = _spatial_scales(node, ctx, scales)
    if mode == "nearest":
        if coordinates in ("align_corners", "tf_crop_and_resize"):
            raise ctx.error(node, f"nearest with coordinate_transformation_mode={coordinates!r} is not supported")
        return _nearest(node, ctx, hw_scales, coordinates == "asymmetric" and nearest_mode == "floor")
    if mode == "linear" and coordinates == "align_corners":
        return [
            c2_op(node, "UpsampleBilinear", inputs=[node.input[0]], height_scale=hw_scales[0], width_scale=hw_scales[1])
        ]
    if mode == "linear" and coordinates in _HALF_PIXEL_MODES:
        return _bilinear_half_pixel(node, ctx, hw_scales)
    raise ctx.error(
        node,
        f"mode={mode!r}, coordinate_transformation_mode={coordinates!r}: expected nearest, or linear with "
        f"align_corners / half_pixel / pytorch_half_pixel",
    )


@converts("Upsample", since=7)
def convert_upsample_attribute(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    scales_blob = ctx.add_initializer(f"{node.output[0]}_scales", np.asarray(attrs["scales"], dtype=np.float32))
    rewritten = onnx.NodeProto()
    rewritten.CopyFrom(node)
    rewritten.input.append(scales_blob)
    return _resize(rewritten, ctx, 1, attrs.get("mode", "nearest"), "asymmetric", "floor")


@converts("Upsample", since=9)
def convert_upsample(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return _resize(node, ctx, 1, node_attributes(node).get("mode", "nearest"), "asymmetric", "floor")


@converts("Resize", since=10)
def convert_resize_10(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    return _resize(node, ctx, 1, node_attributes(node).get("mode", "nearest"), "asymmetric", "floor")


@converts("Resize", since=11)
def convert_resize(node: onnx.NodeProto, ctx: ConversionContext) -> list[caffe2_pb2.OperatorDef]:
    attrs = node_attributes(node)
    if attrs.get("antialias", 0) or attrs.get("axes") is not None:
        raise ctx.error(node, "antialias / axes are not supported")
    return _resize(
        node,
        ctx,
        2,
        attrs.get("mode", "nearest"),
        attrs.get("coordinate_transformation_mode", "half_pixel"),
        attrs.get("nearest_mode", "round_prefer_floor"),
        sizes_input=3,
    )
