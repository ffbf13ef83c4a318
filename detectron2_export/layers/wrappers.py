"""Thin wrappers around torch.nn / torch functions (detectron2.layers.wrappers).

They add what detectron2's models rely on: ``norm`` and ``activation`` sub-modules inside
:class:`Conv2d` (so checkpoints carry ``<conv>.norm.*`` keys), and shape helpers that keep sizes
symbolic while tracing so that traced models accept any input resolution.
"""

import warnings
from typing import Callable, List, Optional

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "Linear",
    "cat",
    "check_if_dynamo_compiling",
    "cross_entropy",
    "empty_input_loss_func_wrapper",
    "interpolate",
    "move_device_like",
    "nonzero_tuple",
    "shapes_to_tensor",
]


def shapes_to_tensor(x: List[int], device: Optional[torch.device] = None) -> torch.Tensor:
    """Turn a list of sizes into a tensor without baking constants into a traced graph.

    While tracing, sizes taken from ``tensor.shape`` are 0-dim tensors; stacking them (instead of
    ``torch.as_tensor``) keeps them connected to the input so the traced graph stays dynamic.
    """
    if torch.jit.is_scripting():
        return torch.as_tensor(x, device=device)
    if torch.jit.is_tracing():
        assert all(isinstance(t, torch.Tensor) for t in x), "Shape should be tensor during tracing!"
        ret = torch.stack(x)
        if ret.device != device:  # only record a device move when one is needed
            ret = ret.to(device=device)
        return ret
    return torch.as_tensor(x, device=device)


def check_if_dynamo_compiling() -> bool:
    """Whether torch.compile (dynamo) is tracing the current frame."""
    return torch.compiler.is_compiling()


def cat(tensors: List[torch.Tensor], dim: int = 0) -> torch.Tensor:
    """torch.cat that skips the copy when there is a single tensor."""
    assert isinstance(tensors, (list, tuple))
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat(tensors, dim)


class Conv2d(nn.Conv2d):
    """nn.Conv2d with optional ``norm`` and ``activation`` applied after the convolution.

    Args (besides nn.Conv2d's):
        norm (nn.Module, optional): a normalization layer, stored as the sub-module ``norm``.
        activation (callable(Tensor) -> Tensor, optional): applied after ``norm``.
    """

    def __init__(self, *args, **kwargs):
        norm = kwargs.pop("norm", None)
        activation = kwargs.pop("activation", None)
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.jit.is_scripting() and not check_if_dynamo_compiling():
            with warnings.catch_warnings(record=True):
                if x.numel() == 0 and self.training:
                    # https://github.com/pytorch/pytorch/issues/12013
                    assert not isinstance(
                        self.norm, nn.SyncBatchNorm
                    ), "SyncBatchNorm does not support empty inputs!"
        x = F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        if self.norm is not None:
            x = self.norm(x)
        if self.activation is not None:
            x = self.activation(x)
        return x


ConvTranspose2d = nn.ConvTranspose2d
BatchNorm2d = nn.BatchNorm2d
interpolate = F.interpolate
Linear = nn.Linear


def nonzero_tuple(x: torch.Tensor):
    """``x.nonzero(as_tuple=True)`` that also works under TorchScript."""
    if torch.jit.is_scripting():
        if x.dim() == 0:
            return x.unsqueeze(0).nonzero().unbind(1)
        return x.nonzero().unbind(1)
    return x.nonzero(as_tuple=True)


@torch.jit.script_if_tracing
def move_device_like(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """``src.to(dst.device)``, scripted while tracing so the device is not hard-coded."""
    return src.to(dst.device)


def empty_input_loss_func_wrapper(loss_func: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``loss_func(input, target, reduction=...)`` that gives 0 (connected to ``input``'s graph)
    instead of NaN for an empty ``target`` with ``reduction="mean"``."""

    def wrapped_loss_func(input: torch.Tensor, target: torch.Tensor, *, reduction: str = "mean", **kwargs):
        if target.numel() == 0 and reduction == "mean":
            return input.sum() * 0.0
        return loss_func(input, target, reduction=reduction, **kwargs)

    return wrapped_loss_func


cross_entropy = empty_input_loss_func_wrapper(F.cross_entropy)
"""``F.cross_entropy`` that returns 0 (not NaN) for empty inputs, as detectron2's."""
