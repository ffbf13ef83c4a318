"""In-place execution of element-wise ops whose first input is a dead temporary.

Out-of-place ``Relu``/``Add``/``Sum`` allocate a fresh activation-sized tensor per op; on CPU most
of their time is page faults on that new memory. When the first input blob is a tensor the net
itself just allocated (its producer returns fresh storage), no other op reads that version of the
blob and it is not a net output, the op can write into it instead: same kernel, same values.

Never applied to parameters or fed inputs (they are not produced by the net), and only enabled by
callers that fetch nothing but the net's external outputs (``ProtobufModel``): the overwritten
intermediate blob then holds the op's result instead of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

# Ops whose output 0 is storage allocated by the op itself, shared with no input or parameter.
# ``Sum`` of one input returns that input, so it counts only with two or more inputs.
_FRESH_OUTPUT_OPS = frozenset({"Conv", "ConvTranspose", "SpatialBN", "AffineChannel", "FC", "Add", "Relu", "Sum"})


def _relu_(x: torch.Tensor) -> tuple[torch.Tensor] | None:
    if not isinstance(x, torch.Tensor):
        return None
    return (x.relu_(),)


def _add_(a: torch.Tensor, b: torch.Tensor, *, broadcast: bool, axis: int, axis_str: str, order: str) -> tuple[torch.Tensor] | None:
    # Only same-shape, same-dtype operands: anything else (broadcasting, promotion, errors) goes
    # through the regular op, which checks it.
    if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
        return None
    if a.shape != b.shape or a.dtype != b.dtype or (broadcast and axis not in (-1, 0)) or axis_str or order != "NCHW":
        return None
    return (a.add_(b),)


def _sum_(*xs: torch.Tensor) -> tuple[torch.Tensor] | None:
    if len(xs) < 2 or not all(isinstance(x, torch.Tensor) and x.shape == xs[0].shape and x.dtype == xs[0].dtype for x in xs):
        return None
    out = xs[0]
    for x in xs[1:]:
        out.add_(x)
    return (out,)


INPLACE_KERNELS: dict[str, Callable[..., tuple | None]] = {"Relu": _relu_, "Add": _add_, "Sum": _sum_}
"""op type -> kernel writing into input 0 with the op's inputs and arguments; it returns None when
these inputs need the regular op (which then runs instead)."""


def _fresh(op_type: str, n_inputs: int) -> bool:
    return op_type in _FRESH_OUTPUT_OPS and (op_type != "Sum" or n_inputs >= 2)


def plan_inplace(
    ops: Sequence[tuple[str, Sequence[str], Sequence[str]]], protected: frozenset[str] | set[str]
) -> set[int]:
    """Indices of the ops (``(type, inputs, outputs)`` in net order) that may overwrite input 0.

    A blob *version* is (name, index of the op that wrote it); op ``i`` qualifies when its type has
    an in-place kernel, its input 0 version was written as output 0 of an earlier fresh-output op,
    that version has exactly one reader (op ``i``, once) and the name is not in ``protected``.
    """
    writer: dict[str, int] = {}
    readers: dict[tuple[str, int], int] = {}
    first_input: list[tuple[str, int] | None] = []
    for i, (_, inputs, outputs) in enumerate(ops):
        for name in inputs:
            if name in writer:
                key = (name, writer[name])
                readers[key] = readers.get(key, 0) + 1
        first_input.append((inputs[0], writer[inputs[0]]) if inputs and inputs[0] in writer else None)
        for name in outputs:
            writer[name] = i
    chosen = set()
    for i, (op_type, _, _) in enumerate(ops):
        key = first_input[i]
        if op_type not in INPLACE_KERNELS or key is None or key[0] in protected or readers[key] != 1:
            continue
        p_type, p_inputs, p_outputs = ops[key[1]]
        if _fresh(p_type, len(p_inputs)) and p_outputs[0] == key[0] and key[0] not in p_inputs:
            chosen.add(i)
    return chosen
