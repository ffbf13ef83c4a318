"""ONNX ``DeformConv`` (opset 19) for ``torchvision::deform_conv2d``, the kernel of detectron2's
``DeformConv`` / ``ModulatedDeformConv``: same offset layout ((y, x) per kernel position and offset
group), the modulation mask as its optional last input. Registered as the symbolic of the traced
torchvision op, so the model's own modules export unchanged."""

from __future__ import annotations

import torch

DEFORM_CONV_OPSET = 19
"""First opset with DeformConv."""


def _symbolic(g, x, weight, offset, mask, bias, stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, groups, offset_groups, use_mask):
    from torch.onnx import symbolic_helper

    attrs = {
        "strides_i": [symbolic_helper._get_const(stride_h, "i", "stride_h"), symbolic_helper._get_const(stride_w, "i", "stride_w")],
        "pads_i": [symbolic_helper._get_const(pad_h, "i", "pad_h"), symbolic_helper._get_const(pad_w, "i", "pad_w")] * 2,
        "dilations_i": [symbolic_helper._get_const(dil_h, "i", "dil_h"), symbolic_helper._get_const(dil_w, "i", "dil_w")],
        "group_i": symbolic_helper._get_const(groups, "i", "groups"),
        "offset_group_i": symbolic_helper._get_const(offset_groups, "i", "offset_groups"),
    }
    inputs = [x, weight, offset, bias]
    if symbolic_helper._get_const(use_mask, "b", "use_mask"):
        inputs.append(mask)
    return g.op("DeformConv", *inputs, **attrs)


def register_deform_conv(opset: int) -> None:
    """Make the exporter emit DeformConv for torchvision's deformable convolution at ``opset``."""
    torch.onnx.register_custom_op_symbolic("torchvision::deform_conv2d", _symbolic, opset)


def has_deform_conv(model: torch.nn.Module) -> bool:
    """Whether ``model`` holds a detectron2 deformable convolution."""
    from ....layers.deform_conv import DeformConv, ModulatedDeformConv

    return any(isinstance(m, (DeformConv, ModulatedDeformConv)) for m in model.modules())
