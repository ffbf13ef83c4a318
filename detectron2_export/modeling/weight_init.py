"""Caffe2-style weight initialisations (fvcore.nn.weight_init), used by detectron2's layers.

Weights normally come from a checkpoint; these only matter for freshly built modules, and are kept
so that a randomly initialised model has the same statistics as one built by detectron2.
"""

from __future__ import annotations

from torch import nn

__all__ = ["c2_msra_fill", "c2_xavier_fill"]


def c2_xavier_fill(module: nn.Module) -> None:
    """Caffe2's "XavierFill" (a uniform Kaiming init with a=1) on ``module.weight``; zero bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_msra_fill(module: nn.Module) -> None:
    """Caffe2's "MSRAFill" (normal Kaiming init, fan_out, ReLU gain) on ``module.weight``; zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
