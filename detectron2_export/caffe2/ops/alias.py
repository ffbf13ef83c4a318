"""``AliasWithName``: an identity that names a blob for the graph passes (SPEC 5.9, 3.9)."""

from __future__ import annotations

from torch import Tensor

from ..registry import Arg, register_op
from .box_utils import caffe2_torch_ops


def alias_with_name(input: Tensor, name: str, is_backward: bool = False) -> Tensor:
    """The kernel of ``_caffe2::AliasWithName``: the input's values.

    Caffe2 shares the input's storage; the torch schema declares no alias, so the kernel returns
    a copy (the op only appears while exporting, where the graph pass turns it into a rename).
    """
    return input.clone()


@register_op(
    "AliasWithName",
    args=(
        Arg("name", str),
        Arg("is_backward", bool, False),
    ),
)
def alias_with_name_op(input: Tensor, *, name: str, is_backward: bool) -> tuple[Tensor]:
    """Runtime entry through ``torch.ops._caffe2.AliasWithName``."""
    return (caffe2_torch_ops().AliasWithName(input, name, is_backward),)
