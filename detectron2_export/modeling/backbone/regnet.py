"""RegNet / AnyNet backbones (detectron2.modeling.backbone.regnet), from "Designing Network Design
Spaces" (Radosavovic et al., 2020) and pycls.

A RegNet is an AnyNet (a stem, then stages ``s1``, ``s2``, ... of identical blocks ``b1``, ``b2``,
...) whose stage widths and depths come from a linear rule: block ``j`` would have width
``w_0 + w_a * j``; that width is snapped to ``w_0 * w_m**k`` (``k`` an integer, then a multiple of 8),
and consecutive blocks of one width make a stage. Module names (``stem.conv``, ``s1.b1.f.a_bn``,
``s1.b1.proj``, ``...f.se.f_ex.0``) are detectron2's, so its checkpoints load as they are.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ...errors import ConfigError
from ...layers import CNNBlockBase, ShapeSpec, get_norm
from .backbone import Backbone

__all__ = [
    "AnyNet",
    "RegNet",
    "ResStem",
    "SimpleStem",
    "VanillaBlock",
    "ResBasicBlock",
    "ResBottleneckBlock",
    "SE",
    "generate_regnet_parameters",
    "adjust_block_compatibility",
]


def conv2d(w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """A k x k convolution with "same" padding (k odd)."""
    if k % 2 != 1:
        raise ValueError(f"regnet.conv2d: k={k}, expected an odd kernel size")
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=bias)


def init_weights(m: nn.Module) -> None:
    """pycls' initialisation: convs N(0, sqrt(2 / fan_out)), norms identity, linears N(0, 0.01)."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(mean=0.0, std=math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        m.weight.data.fill_(1.0)
        m.bias.data.zero_()
    elif isinstance(m, nn.Linear):
        m.weight.data.normal_(mean=0.0, std=0.01)
        m.bias.data.zero_()


class _ForwardChildren:
    """Mixin: forward runs the module's children in registration order (pycls' blocks)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.children():
            x = layer(x)
        return x


class _Sequential(_ForwardChildren, CNNBlockBase):
    """A block whose forward runs its children in registration order."""


def _add_two_convs(module: nn.Module, w_in: int, w_out: int, stride: int, norm, activation_class) -> None:
    """Register ``a`` (3x3, stride), ``a_bn``, ``a_af``, ``b`` (3x3), ``b_bn`` on ``module``."""
    module.a = conv2d(w_in, w_out, 3, stride=stride)
    module.a_bn = get_norm(norm, w_out)
    module.a_af = activation_class()
    module.b = conv2d(w_out, w_out, 3)
    module.b_bn = get_norm(norm, w_out)


class _ConvStem(_Sequential):
    """A k x k stride-2 conv, norm and activation; ``stride`` is the stem's total stride."""

    def __init__(self, w_in: int, w_out: int, norm, activation_class: Callable[[], nn.Module], k: int, stride: int):
        super().__init__(w_in, w_out, stride)
        self.conv = conv2d(w_in, w_out, k, stride=2)
        self.bn = get_norm(norm, w_out)
        self.af = activation_class()


class ResStem(_ConvStem):
    """ResNet's stem for ImageNet: 7x7 stride-2 conv, norm, activation, 3x3 stride-2 max pool."""

    def __init__(self, w_in: int, w_out: int, norm, activation_class: Callable[[], nn.Module]):
        super().__init__(w_in, w_out, norm, activation_class, 7, 4)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)


class SimpleStem(_ConvStem):
    """The "dds" stem: one 3x3 stride-2 conv, norm, activation (stride 2)."""

    def __init__(self, w_in: int, w_out: int, norm, activation_class: Callable[[], nn.Module]):
        super().__init__(w_in, w_out, norm, activation_class, 3, 2)


class SE(nn.Module):
    """Squeeze-and-Excitation: channels scaled by a gate computed from their global average."""

    def __init__(self, w_in: int, w_se: int, activation_class: Callable[[], nn.Module]):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.f_ex = nn.Sequential(
            conv2d(w_in, w_se, 1, bias=True),
            activation_class(),
            conv2d(w_se, w_in, 1, bias=True),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.f_ex(self.avg_pool(x))


class VanillaBlock(_Sequential):
    """Two 3x3 convs with norm and activation, no residual."""

    def __init__(self, w_in: int, w_out: int, stride: int, norm, activation_class, _params: Dict[str, Any]):
        super().__init__(w_in, w_out, stride)
        _add_two_convs(self, w_in, w_out, stride, norm, activation_class)
        self.b_af = activation_class()


class BasicTransform(_ForwardChildren, nn.Module):
    """The residual branch of :class:`ResBasicBlock`: 3x3 conv, norm, act, 3x3 conv, norm."""

    def __init__(self, w_in: int, w_out: int, stride: int, norm, activation_class, _params: Dict[str, Any]):
        super().__init__()
        _add_two_convs(self, w_in, w_out, stride, norm, activation_class)
        self.b_bn.final_bn = True


class BottleneckTransform(_ForwardChildren, nn.Module):
    """The residual branch of :class:`ResBottleneckBlock`: 1x1, grouped 3x3 (stride), optional SE, 1x1.

    ``params``: ``bot_mul`` (bottleneck width / output width), ``group_w`` (channels per group of
    the 3x3 conv), ``se_r`` (SE width / input width; 0 for no SE).
    """

    def __init__(self, w_in: int, w_out: int, stride: int, norm, activation_class, params: Dict[str, Any]):
        super().__init__()
        w_b = int(round(w_out * params["bot_mul"]))
        w_se = int(round(w_in * params["se_r"]))
        groups = w_b // params["group_w"]
        self.a = conv2d(w_in, w_b, 1)
        self.a_bn = get_norm(norm, w_b)
        self.a_af = activation_class()
        self.b = conv2d(w_b, w_b, 3, stride=stride, groups=groups)
        self.b_bn = get_norm(norm, w_b)
        self.b_af = activation_class()
        if w_se:
            self.se = SE(w_b, w_se, activation_class)
        self.c = conv2d(w_b, w_out, 1)
        self.c_bn = get_norm(norm, w_out)
        self.c_bn.final_bn = True


class _ResidualBlock(CNNBlockBase):
    """``af(shortcut(x) + f(x))``; the shortcut is a strided 1x1 conv + norm when the shape changes."""

    transform_class: type

    def __init__(self, w_in: int, w_out: int, stride: int, norm, activation_class, params: Dict[str, Any]):
        super().__init__(w_in, w_out, stride)
        self.proj_block = (w_in != w_out) or (stride != 1)
        if self.proj_block:
            self.proj = conv2d(w_in, w_out, 1, stride=stride)
            self.bn = get_norm(norm, w_out)
        self.f = self.transform_class(w_in, w_out, stride, norm, activation_class, params)
        self.af = activation_class()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_p = self.bn(self.proj(x)) if self.proj_block else x
        return self.af(x_p + self.f(x))


class ResBasicBlock(_ResidualBlock):
    """Residual basic block: x + two 3x3 convs."""

    transform_class = BasicTransform


class ResBottleneckBlock(_ResidualBlock):
    """Residual bottleneck block (RegNetX; RegNetY with SE): x + 1x1, grouped 3x3, 1x1."""

    transform_class = BottleneckTransform


class AnyStage(_ForwardChildren, nn.Module):
    """``d`` blocks ``b1``..``bd``; the first has the stage's stride and input width."""

    def __init__(self, w_in: int, w_out: int, stride: int, d: int, block_class, norm, activation_class, params):
        super().__init__()
        for i in range(d):
            self.add_module(f"b{i + 1}", block_class(w_in, w_out, stride, norm, activation_class, params))
            stride, w_in = 1, w_out


class AnyNet(Backbone):
    """A stem then stages ``s1``.. of the given depths, widths, strides, bottleneck ratios and group widths.

    Args:
        stem_class: :class:`ResStem` or :class:`SimpleStem` (or any ``(w_in, w_out, norm, act)`` block).
        stem_width: output channels of the stem.
        block_class: the block of every stage (e.g. :class:`ResBottleneckBlock`).
        depths, widths, group_widths, strides, bottleneck_ratios: one value per stage.
        se_ratio: SE width / block input width (0 for none).
        activation_class: builds the activation modules (no arguments).
        freeze_at: freeze the stem (>= 1) and stages ``s1``..``s{freeze_at-1}``.
        norm: normalisation after every conv (see :func:`get_norm`).
        out_features: outputs, among "stem", "s1", ...; default the last stage.
    """

    def __init__(
        self,
        *,
        stem_class,
        stem_width: int,
        block_class,
        depths: Sequence[int],
        widths: Sequence[int],
        group_widths: Sequence[int],
        strides: Sequence[int],
        bottleneck_ratios: Sequence[float],
        se_ratio: float,
        activation_class: Callable[[], nn.Module],
        freeze_at: int = 0,
        norm="BN",
        out_features: Optional[List[str]] = None,
    ):
        super().__init__()
        per_stage = (depths, widths, group_widths, strides, bottleneck_ratios)
        if len({len(v) for v in per_stage}) != 1:
            raise ValueError(
                "AnyNet: depths, widths, group_widths, strides, bottleneck_ratios have lengths "
                f"{[len(v) for v in per_stage]}, expected one value per stage each"
            )
        self.stem = stem_class(3, stem_width, norm, activation_class)

        current_stride = self.stem.stride
        self._out_feature_strides = {"stem": current_stride}
        self._out_feature_channels = {"stem": self.stem.out_channels}
        self.stages_and_names: List[Tuple[AnyStage, str]] = []
        prev_w = stem_width
        for i, (d, w, s, b, g) in enumerate(zip(depths, widths, strides, bottleneck_ratios, group_widths)):
            params = {"bot_mul": b, "group_w": g, "se_r": se_ratio}
            stage = AnyStage(prev_w, w, s, d, block_class, norm, activation_class, params)
            name = f"s{i + 1}"
            self.add_module(name, stage)
            self.stages_and_names.append((stage, name))
            current_stride = int(current_stride * np.prod([k.stride for k in stage.children()]))
            self._out_feature_strides[name] = current_stride
            self._out_feature_channels[name] = list(stage.children())[-1].out_channels
            prev_w = w

        self.apply(init_weights)

        if out_features is None:
            out_features = [name]
        self._out_features = list(out_features)
        children = [x[0] for x in self.named_children()]
        for out_feature in self._out_features:
            if out_feature not in children:
                raise ConfigError(
                    f"AnyNet: out_features contains {out_feature!r}, expected names among {children}"
                )
        self.freeze(freeze_at)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (N, C, H, W) -> {name: feature} for the requested ``out_features``."""
        if x.dim() != 4:
            raise ValueError(f"AnyNet: input of shape {tuple(x.shape)}, expected (N, C, H, W)")
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for stage, name in self.stages_and_names:
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }

    def freeze(self, freeze_at: int = 0) -> "AnyNet":
        """Freeze the stem (``freeze_at >= 1``) and the blocks of stages up to ``s{freeze_at - 1}``."""
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, (stage, _) in enumerate(self.stages_and_names, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self


def adjust_block_compatibility(
    ws: Sequence[float], bs: Sequence[float], gs: Sequence[int]
) -> Tuple[List[int], List[float], List[int]]:
    """Adjust widths so that every bottleneck width is a multiple of its group width.

    Group widths are capped by the bottleneck width; bottleneck widths are rounded to a multiple of
    lcm(group width, ratio) (the group width for ratio 1); output widths follow from the ratios.
    """
    if not len(ws) == len(bs) == len(gs):
        raise ValueError(f"adjust_block_compatibility: lengths {len(ws)}, {len(bs)}, {len(gs)}, expected equal")
    if not all(w > 0 and b > 0 and g > 0 for w, b, g in zip(ws, bs, gs)):
        raise ValueError(f"adjust_block_compatibility: ws={ws}, bs={bs}, gs={gs}, expected positive values")
    vs = [int(max(1, w * b)) for w, b in zip(ws, bs)]
    gs = [int(min(g, v)) for g, v in zip(gs, vs)]
    ms = [np.lcm(g, b) if b > 1 else g for g, b in zip(gs, bs)]
    vs = [max(m, int(round(v / m) * m)) for v, m in zip(vs, ms)]
    ws = [int(v / b) for v, b in zip(vs, bs)]
    assert all(w * b % g == 0 for w, b, g in zip(ws, bs, gs))
    return ws, list(bs), gs


def generate_regnet_parameters(
    w_a: float, w_0: int, w_m: float, d: int, q: int = 8
) -> Tuple[List[int], List[int], int, float, List[int], List[float]]:
    """Per-stage widths and depths of a RegNet from its linear parameters.

    Returns (stage widths, stage depths, number of stages, number of stages without merging,
    the quantised width of every block, the continuous width of every block).
    """
    if not (w_a >= 0 and w_0 > 0 and w_m > 1 and w_0 % q == 0):
        raise ValueError(
            f"generate_regnet_parameters: w_a={w_a}, w_0={w_0}, w_m={w_m}, expected w_a >= 0, "
            f"w_0 > 0 a multiple of {q}, w_m > 1"
        )
    ws_cont = np.arange(d) * w_a + w_0
    ks = np.round(np.log(ws_cont / w_0) / np.log(w_m))
    ws_all = w_0 * np.power(w_m, ks)
    ws_all = np.round(np.divide(ws_all, q)).astype(int) * q
    ws, ds = np.unique(ws_all, return_counts=True)
    num_stages, total_stages = len(ws), ks.max() + 1
    return ws.tolist(), ds.tolist(), num_stages, float(total_stages), ws_all.tolist(), ws_cont.tolist()


def _default_activation_class() -> nn.Module:
    return nn.ReLU(inplace=True)


class RegNet(AnyNet):
    """A RegNet (RegNetX; RegNetY with ``se_ratio > 0``) from its parameters ``w_a, w_0, w_m, depth``.

    Args:
        depth: total number of blocks.
        w_a, w_0, w_m: slope, initial width and width multiplier of the width rule.
        group_width: channels per group of the 3x3 convs.
        stride: stride of every stage's first block.
        bottleneck_ratio: bottleneck width / output width.
        se_ratio: SE width / block input width (RegNetY: 0.25).
        activation_class: default ``ReLU(inplace=True)``.
        Others as :class:`AnyNet`.
    """

    def __init__(
        self,
        *,
        stem_class,
        stem_width: int,
        block_class,
        depth: int,
        w_a: float,
        w_0: int,
        w_m: float,
        group_width: int,
        stride: int = 2,
        bottleneck_ratio: float = 1.0,
        se_ratio: float = 0.0,
        activation_class: Optional[Callable[[], nn.Module]] = None,
        freeze_at: int = 0,
        norm="BN",
        out_features: Optional[List[str]] = None,
    ):
        ws, ds = generate_regnet_parameters(w_a, w_0, w_m, depth)[0:2]
        ss = [stride for _ in ws]
        bs = [bottleneck_ratio for _ in ws]
        gs = [group_width for _ in ws]
        ws, bs, gs = adjust_block_compatibility(ws, bs, gs)
        super().__init__(
            stem_class=stem_class,
            stem_width=stem_width,
            block_class=block_class,
            depths=ds,
            widths=ws,
            strides=ss,
            group_widths=gs,
            bottleneck_ratios=bs,
            se_ratio=se_ratio,
            activation_class=_default_activation_class if activation_class is None else activation_class,
            freeze_at=freeze_at,
            norm=norm,
            out_features=out_features,
        )
