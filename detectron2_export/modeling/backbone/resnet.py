"""ResNet / ResNeXt backbones (detectron2.modeling.backbone.resnet).

Module names (``stem.conv1``, ``res2.0.conv1``, ``res2.0.shortcut``, ``<conv>.norm``) follow
detectron2 so its checkpoints load as they are.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError
from ...layers import CNNBlockBase, Conv2d, DeformConv, ModulatedDeformConv, ShapeSpec, get_norm
from ..weight_init import c2_msra_fill
from .backbone import Backbone
from .build import BACKBONE_REGISTRY

__all__ = [
    "ResNetBlockBase",
    "BasicBlock",
    "BottleneckBlock",
    "DeformBottleneckBlock",
    "BasicStem",
    "ResNet",
    "make_stage",
    "build_resnet_backbone",
]

# Number of blocks in res2..res5 for each supported depth.
_BLOCKS_PER_STAGE = {
    18: [2, 2, 2, 2],
    34: [3, 4, 6, 3],
    50: [3, 4, 6, 3],
    101: [3, 4, 23, 3],
    152: [3, 8, 36, 3],
}


def _shortcut(in_channels: int, out_channels: int, stride: int, norm) -> Optional[Conv2d]:
    """The 1x1 projection shortcut, needed only when the channel count changes."""
    if in_channels == out_channels:
        return None
    return Conv2d(
        in_channels,
        out_channels,
        kernel_size=1,
        stride=stride,
        bias=False,
        norm=get_norm(norm, out_channels),
    )


class BasicBlock(CNNBlockBase):
    """The two 3x3-conv residual block of ResNet-18 and ResNet-34."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, norm="BN"):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        self.conv1 = Conv2d(
            in_channels,
            out_channels,
            kernel_size=3,
            stride=stride,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        self.conv2 = Conv2d(
            out_channels,
            out_channels,
            kernel_size=3,
            stride=1,
            padding=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        for layer in (self.conv1, self.conv2, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = self.conv2(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out += shortcut
        return F.relu_(out)


class BottleneckBlock(CNNBlockBase):
    """The 1x1 -> 3x3 -> 1x1 residual block of ResNet-50/101/152 and ResNeXt.

    Args:
        bottleneck_channels: channels of the inner 3x3 conv (num_groups * width_per_group).
        num_groups: groups of the 3x3 conv (ResNeXt's cardinality; 1 for ResNet).
        stride_in_1x1: put the stride in the first 1x1 conv (MSRA/Caffe2 models) instead of the
            3x3 conv (torchvision-style models).
        dilation: dilation of the 3x3 conv (2 in res5 of DC5 models).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        bottleneck_channels: int,
        stride: int = 1,
        num_groups: int = 1,
        norm="BN",
        stride_in_1x1: bool = False,
        dilation: int = 1,
    ):
        super().__init__(in_channels, out_channels, stride)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = Conv2d(
            in_channels,
            bottleneck_channels,
            kernel_size=1,
            stride=stride_1x1,
            bias=False,
            norm=get_norm(norm, bottleneck_channels),
        )
        self._init_conv2(
            bottleneck_channels,
            {
                "kernel_size": 3,
                "stride": stride_3x3,
                "padding": dilation,
                "bias": False,
                "groups": num_groups,
                "dilation": dilation,
                "norm": get_norm(norm, bottleneck_channels),
            },
        )
        self.conv3 = Conv2d(
            bottleneck_channels,
            out_channels,
            kernel_size=1,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        for layer in (self.conv1, self.conv2, self.conv3, self.shortcut):
            if layer is not None:
                c2_msra_fill(layer)

    def _init_conv2(self, channels: int, conv2_kwargs: Dict[str, Any]) -> None:
        """The 3x3 conv (a hook: :class:`DeformBottleneckBlock` makes it deformable)."""
        self.conv2 = Conv2d(channels, channels, **conv2_kwargs)

    def _conv2(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu_(self.conv1(x))
        out = F.relu_(self._conv2(out))
        out = self.conv3(out)
        shortcut = self.shortcut(x) if self.shortcut is not None else x
        out += shortcut
        return F.relu_(out)


class DeformBottleneckBlock(BottleneckBlock):
    """A :class:`BottleneckBlock` whose 3x3 conv is deformable (DCNv1) or modulated deformable
    (DCNv2): a plain 3x3 conv ``conv2_offset`` predicts, from the same input, the sampling
    offsets (18 channels per deformable group) and, when modulated, the masks (9 more, through a
    sigmoid). ``conv2_offset`` starts at zero, so the block starts as a plain bottleneck.

    Args (besides BottleneckBlock's):
        deform_modulated: use ModulatedDeformConv (DCNv2) instead of DeformConv.
        deform_num_groups: deformable groups (channel groups with their own offsets).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        deform_modulated: bool = False,
        deform_num_groups: int = 1,
        **kwargs: Any,
    ):
        self._deform = (deform_modulated, deform_num_groups)  # read by _init_conv2
        super().__init__(in_channels, out_channels, **kwargs)
        self.deform_modulated = deform_modulated
        del self._deform
        nn.init.constant_(self.conv2_offset.weight, 0)
        nn.init.constant_(self.conv2_offset.bias, 0)

    def _init_conv2(self, channels: int, conv2_kwargs: Dict[str, Any]) -> None:
        modulated, deform_num_groups = self._deform
        # (dy, dx) per kernel position, and a mask value per position when modulated
        self.conv2_offset = Conv2d(
            channels,
            (27 if modulated else 18) * deform_num_groups,
            kernel_size=3,
            stride=conv2_kwargs["stride"],
            padding=conv2_kwargs["padding"],
            dilation=conv2_kwargs["dilation"],
        )
        deform_conv = ModulatedDeformConv if modulated else DeformConv
        self.conv2 = deform_conv(channels, channels, deformable_groups=deform_num_groups, **conv2_kwargs)

    def _conv2(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.conv2_offset(x)
        if not self.deform_modulated:
            return self.conv2(x, offset)
        # detectron2's split of the 27 * G channels: two thirds offsets, the last third masks
        offset_x, offset_y, mask = torch.chunk(offset, 3, dim=1)
        return self.conv2(x, torch.cat((offset_x, offset_y), dim=1), mask.sigmoid())


class BasicStem(CNNBlockBase):
    """The ResNet stem: a 7x7 stride-2 conv, ReLU, then a 3x3 stride-2 max pool (stride 4)."""

    def __init__(self, in_channels: int = 3, out_channels: int = 64, norm="BN"):
        super().__init__(in_channels, out_channels, 4)
        self.in_channels = in_channels
        self.conv1 = Conv2d(
            in_channels,
            out_channels,
            kernel_size=7,
            stride=2,
            padding=3,
            bias=False,
            norm=get_norm(norm, out_channels),
        )
        c2_msra_fill(self.conv1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu_(self.conv1(x))
        return F.max_pool2d(x, kernel_size=3, stride=2, padding=1)


class ResNet(Backbone):
    """A stem followed by stages ``res2``, ``res3``, ... and an optional linear classifier.

    Args:
        stem: a :class:`CNNBlockBase` (its ``stride`` is the stem's total stride).
        stages: one list of blocks per stage; stage ``i`` is named ``"res{i + 2}"``.
        num_classes: if given, add global average pooling and a ``linear`` classifier.
        out_features: names of the outputs ("stem", "res2", ..., "linear"). Stages after the last
            requested one are not built. Defaults to the last layer.
        freeze_at: freeze the stem (1) and the stages up to ``res{freeze_at}``; 0 freezes nothing.
    """

    def __init__(
        self,
        stem: nn.Module,
        stages: List[List[CNNBlockBase]],
        num_classes: Optional[int] = None,
        out_features: Optional[Sequence[str]] = None,
        freeze_at: int = 0,
    ):
        super().__init__()
        self.stem = stem
        self.num_classes = num_classes

        current_stride = self.stem.stride
        self._out_feature_strides = {"stem": current_stride}
        self._out_feature_channels = {"stem": self.stem.out_channels}

        if out_features is not None:
            stage_index = {"res2": 1, "res3": 2, "res4": 3, "res5": 4}
            num_stages = max(stage_index.get(f, 0) for f in out_features)
            stages = stages[:num_stages]

        stage_names: List[str] = []
        self.stages: List[nn.Module] = []
        for i, blocks in enumerate(stages):
            if len(blocks) == 0:
                raise ValueError(f"ResNet: stage res{i + 2} has no blocks, expected at least one")
            for block in blocks:
                if not isinstance(block, CNNBlockBase):
                    raise TypeError(f"ResNet: block {block!r} of res{i + 2}, expected a CNNBlockBase")
            name = f"res{i + 2}"
            stage = nn.Sequential(*blocks)
            self.add_module(name, stage)
            stage_names.append(name)
            self.stages.append(stage)
            current_stride = int(current_stride * np.prod([block.stride for block in blocks]))
            self._out_feature_strides[name] = current_stride
            self._out_feature_channels[name] = curr_channels = blocks[-1].out_channels
        self.stage_names = tuple(stage_names)  # a tuple, so that TorchScript can unroll the loop

        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.linear = nn.Linear(curr_channels, num_classes)
            # Sec 5.1 of "Accurate, Large Minibatch SGD": the classifier starts close to zero.
            nn.init.normal_(self.linear.weight, std=0.01)
            name = "linear"

        if out_features is None:
            out_features = [name]
        self._out_features = list(out_features)
        if not self._out_features:
            raise ValueError("ResNet: out_features is empty, expected at least one name")
        children = [x[0] for x in self.named_children()]
        for out_feature in self._out_features:
            if out_feature not in children:
                raise ValueError(f"ResNet: out_features contains {out_feature!r}, expected one of {children}")
        self.freeze(freeze_at)

    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        """x: (N, C, H, W) -> dict of the requested feature maps."""
        assert x.dim() == 4, f"ResNet takes an input of shape (N, C, H, W). Got {x.shape} instead!"
        outputs = {}
        x = self.stem(x)
        if "stem" in self._out_features:
            outputs["stem"] = x
        for name, stage in zip(self.stage_names, self.stages):
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        if self.num_classes is not None:
            x = self.avgpool(x)
            x = torch.flatten(x, 1)
            x = self.linear(x)
            if "linear" in self._out_features:
                outputs["linear"] = x
        return outputs

    def freeze(self, freeze_at: int = 0) -> "ResNet":
        """Freeze the stem (``freeze_at >= 1``) and stages ``res2..res{freeze_at}``.

        Frozen blocks get no gradients and their BatchNorms become FrozenBatchNorm2d.
        """
        if freeze_at >= 1:
            self.stem.freeze()
        for idx, stage in enumerate(self.stages, start=2):
            if freeze_at >= idx:
                for block in stage.children():
                    block.freeze()
        return self

    @staticmethod
    def make_stage(
        block_class: type, num_blocks: int, *, in_channels: int, out_channels: int, **kwargs: Any
    ) -> List[CNNBlockBase]:
        """Create the blocks of one stage; all have the same type and ``out_channels``.

        A keyword ``xxx_per_block`` must be a list of length ``num_blocks`` and gives block ``i``
        the argument ``xxx=value[i]`` (e.g. ``stride_per_block=[2, 1, 1]``); other keywords are
        passed to every block. The first block takes ``in_channels``, the others ``out_channels``.
        """
        blocks = []
        for i in range(num_blocks):
            curr_kwargs = {}
            for k, v in kwargs.items():
                if k.endswith("_per_block"):
                    if len(v) != num_blocks:
                        raise ValueError(
                            f"make_stage: {k} has length {len(v)}, expected num_blocks={num_blocks}"
                        )
                    newk = k[: -len("_per_block")]
                    if newk in kwargs:
                        raise ValueError(f"make_stage: got both {k} and {newk}, expected one of them")
                    curr_kwargs[newk] = v[i]
                else:
                    curr_kwargs[k] = v
            blocks.append(block_class(in_channels=in_channels, out_channels=out_channels, **curr_kwargs))
            in_channels = out_channels
        return blocks

    @staticmethod
    def make_default_stages(depth: int, block_class: Optional[type] = None, **kwargs: Any):
        """The four stages res2..res5 of a standard ResNet of the given depth.

        ``kwargs`` (e.g. ``norm``, ``stride_in_1x1``) go to every block. ``block_class`` defaults
        to :class:`BasicBlock` for depths 18/34 and :class:`BottleneckBlock` otherwise.
        """
        num_blocks_per_stage = _BLOCKS_PER_STAGE[depth]
        if block_class is None:
            block_class = BasicBlock if depth < 50 else BottleneckBlock
        if depth < 50:
            in_channels = [64, 64, 128, 256]
            out_channels = [64, 128, 256, 512]
        else:
            in_channels = [64, 256, 512, 1024]
            out_channels = [256, 512, 1024, 2048]
        ret = []
        for n, s, i, o in zip(num_blocks_per_stage, [1, 2, 2, 2], in_channels, out_channels):
            if depth >= 50:
                kwargs["bottleneck_channels"] = o // 4
            ret.append(
                ResNet.make_stage(
                    block_class=block_class,
                    num_blocks=n,
                    stride_per_block=[s] + [1] * (n - 1),
                    in_channels=i,
                    out_channels=o,
                    **kwargs,
                )
            )
        return ret


ResNetBlockBase = CNNBlockBase
"""Deprecated alias of :class:`CNNBlockBase`, kept for detectron2 compatibility."""


def make_stage(*args: Any, **kwargs: Any) -> List[CNNBlockBase]:
    """Deprecated alias of :meth:`ResNet.make_stage`."""
    return ResNet.make_stage(*args, **kwargs)


def _check_resnet_cfg(rcfg) -> None:
    """Reject MODEL.RESNETS settings this package cannot build, naming the offending key."""

    def require(ok: bool, key: str, expected: str) -> None:
        if not ok:
            raise ConfigError(
                f"build_resnet_backbone: MODEL.RESNETS.{key}={rcfg[key]!r}, expected {expected}"
            )

    require(rcfg.DEPTH in _BLOCKS_PER_STAGE, "DEPTH", f"one of {sorted(_BLOCKS_PER_STAGE)}")
    require(rcfg.RES5_DILATION in (1, 2), "RES5_DILATION", "1 or 2")
    require(len(rcfg.DEFORM_ON_PER_STAGE) == 4, "DEFORM_ON_PER_STAGE", "4 booleans (res2..res5)")
    if rcfg.DEPTH in (18, 34):
        require(not any(rcfg.DEFORM_ON_PER_STAGE), "DEFORM_ON_PER_STAGE", "all False for R18/R34")
        require(rcfg.RES2_OUT_CHANNELS == 64, "RES2_OUT_CHANNELS", "64 for R18/R34")
        require(rcfg.RES5_DILATION == 1, "RES5_DILATION", "1 for R18/R34")
        require(rcfg.NUM_GROUPS == 1, "NUM_GROUPS", "1 for R18/R34")


@BACKBONE_REGISTRY.register()
def build_resnet_backbone(cfg, input_shape: ShapeSpec) -> ResNet:
    """Build a ResNet/ResNeXt from ``cfg.MODEL.RESNETS`` and ``cfg.MODEL.BACKBONE.FREEZE_AT``."""
    rcfg = cfg.MODEL.RESNETS
    norm = rcfg.NORM
    depth = rcfg.DEPTH
    num_groups = rcfg.NUM_GROUPS
    bottleneck_channels = num_groups * rcfg.WIDTH_PER_GROUP
    in_channels = rcfg.STEM_OUT_CHANNELS
    out_channels = rcfg.RES2_OUT_CHANNELS
    res5_dilation = rcfg.RES5_DILATION
    _check_resnet_cfg(rcfg)

    stem = BasicStem(in_channels=input_shape.channels, out_channels=in_channels, norm=norm)
    num_blocks_per_stage = _BLOCKS_PER_STAGE[depth]
    stages = []
    for idx, stage_idx in enumerate(range(2, 6)):
        # res5 of DC5 models keeps stride 16 and dilates its 3x3 convs instead.
        dilation = res5_dilation if stage_idx == 5 else 1
        first_stride = 1 if idx == 0 or (stage_idx == 5 and dilation == 2) else 2
        num_blocks = num_blocks_per_stage[idx]
        stage_kwargs: Dict[str, Any] = {
            "num_blocks": num_blocks,
            "stride_per_block": [first_stride] + [1] * (num_blocks - 1),
            "in_channels": in_channels,
            "out_channels": out_channels,
            "norm": norm,
        }
        if depth in (18, 34):
            stage_kwargs["block_class"] = BasicBlock
        else:
            stage_kwargs["block_class"] = BottleneckBlock
            if rcfg.DEFORM_ON_PER_STAGE[idx]:
                stage_kwargs["block_class"] = DeformBottleneckBlock
                stage_kwargs["deform_modulated"] = rcfg.DEFORM_MODULATED
                stage_kwargs["deform_num_groups"] = rcfg.DEFORM_NUM_GROUPS
            stage_kwargs["bottleneck_channels"] = bottleneck_channels
            stage_kwargs["stride_in_1x1"] = rcfg.STRIDE_IN_1X1
            stage_kwargs["dilation"] = dilation
            stage_kwargs["num_groups"] = num_groups
        stages.append(ResNet.make_stage(**stage_kwargs))
        in_channels = out_channels
        out_channels *= 2
        bottleneck_channels *= 2
    return ResNet(stem, stages, out_features=rcfg.OUT_FEATURES, freeze_at=cfg.MODEL.BACKBONE.FREEZE_AT)
