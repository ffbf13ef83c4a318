"""Normalisation ops (SPEC 5.12): SpatialBN (inference), AffineChannel, GroupNorm; NCHW."""

from __future__ import annotations

import torch

from ...errors import OperatorArgumentError, OperatorInputError
from ..op_args import check_rank, order_arg
from ..registry import Arg, register_op

_EPSILON = Arg("epsilon", float, 1e-5, lambda v: v >= 0, "a float >= 0")


def _per_channel(op_type: str, x: torch.Tensor, **params: torch.Tensor) -> list[torch.Tensor]:
    """Checks that each parameter is (C,) and returns them shaped (1, C, 1, ...) for broadcasting."""
    check_rank(op_type, "X", x, tuple(range(2, 9)))
    c = x.shape[1]
    shape = [1, c] + [1] * (x.dim() - 2)
    out = []
    for name, p in params.items():
        check_rank(op_type, name, p, (1,))
        if p.shape[0] != c:
            raise OperatorInputError(f"{op_type}: {name} shape={tuple(p.shape)}, expected ({c},) for X shape={tuple(x.shape)}")
        out.append(p.reshape(shape))
    return out


@register_op(
    "SpatialBN",
    n_inputs=(5, 5),
    args=(_EPSILON, order_arg(), Arg("is_test", bool, False, lambda v: v, "1 (inference only)"), Arg("momentum", float, 0.9)),
    ignored_args=("num_batches", "spatial"),
)
def spatial_bn(
    x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, mean: torch.Tensor, var: torch.Tensor, *, epsilon: float, order: str, is_test: bool, momentum: float
) -> tuple[torch.Tensor]:
    """Y = scale * (X - mean) / sqrt(var + epsilon) + bias per channel (running statistics)."""
    s, b, m, v = _per_channel("SpatialBN", x, scale=scale, bias=bias, mean=mean, var=var)
    return ((x - m) * (s * torch.rsqrt(v + epsilon)) + b,)


@register_op("AffineChannel", n_inputs=(3, 3), args=(order_arg(), Arg("is_learnable", bool, False)))
def affine_channel(x: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, *, order: str, is_learnable: bool) -> tuple[torch.Tensor]:
    """Y = X * scale[c] + bias[c] (a frozen BatchNorm)."""
    s, b = _per_channel("AffineChannel", x, scale=scale, bias=bias)
    return (x * s + b,)


@register_op("GroupNorm", n_inputs=(3, 3), n_outputs=(1, 3), args=(Arg("group", int, 32, lambda v: v >= 1, "an int >= 1"), _EPSILON, order_arg()))
def group_norm(
    x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, *, group: int, epsilon: float, order: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per (sample, group) statistics over (C/G, spatial), biased variance; outputs Y, mean (N, G), inv_std (N, G)."""
    g, b = _per_channel("GroupNorm", x, gamma=gamma, beta=beta)
    n, c = x.shape[:2]
    if c % group:
        raise OperatorArgumentError(f"GroupNorm: group={group}, expected a divisor of the {c} channels of X")
    grouped = x.reshape(n, group, -1)
    var, mean = torch.var_mean(grouped, dim=2, unbiased=False)
    inv_std = torch.rsqrt(var + epsilon)
    y = ((grouped - mean[:, :, None]) * inv_std[:, :, None]).reshape(x.shape)
    return y * g + b, mean, inv_std
