"""Load-time fusion of Conv, Conv+Relu, Conv+Add and Conv+Add+Relu into one oneDNN convolution.

``torch.ops.mkldnn._convolution_pointwise`` runs a convolution with a unary post-op ("relu") or a
binary one ("add" with a second tensor, then an optional "relu") in one pass over the output, with
the filter reordered once at load time to oneDNN's blocked layout
(``torch.ops.mkldnn._reorder_convolution_weight``) instead of on every call. The result is the same
convolution kernel's: bitwise equal to ``conv2d`` then ``relu_`` / ``add_`` on this torch, and no
intermediate activation is allocated. Measured on this 2-core machine (2 threads, channels-last,
side by side with ``conv2d`` + ``relu_`` in one process): a 256-channel 3x3 conv at 100x152 with
ReLU takes 0.85-0.90x the time, a 64->256 1x1 conv at 200x304 0.75x, a 256->64 one 0.59x.

A chain is fused when each intermediate blob version (the Conv output, the Add output) has exactly
one reader, the next op of the chain, and is not a net output; the filter is a 4-D float32 CPU
parameter (in the init net's blobs, never written by the predict net), the pads are symmetric and
the Add has no broadcast arguments. The fused op takes the place of the chain's last op, reads
what the chain read (X, bias, the Add's other operand) and writes the chain's last output. At run
time anything else (other dtypes or shapes, a non-dense X, and the inputs for which ``conv2d`` would
not use oneDNN either: ``conv2d_uses_onednn``) runs the original ops one after another, so that
results stay those of the unfused net (bitwise, on this torch).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import Detectron2ExportError, OperatorArgumentError
from .conv_pool_args import Geometry, resolve_geometry
from .executor import BoundOp, describe_op
from .precision import fused_output
from .profiler import conv_flops

_POINTWISE = getattr(getattr(torch.ops, "mkldnn", None), "_convolution_pointwise", None)


def fusion_available() -> bool:
    """Whether this torch has oneDNN and its pointwise convolution ops."""
    return _POINTWISE is not None and torch.backends.mkldnn.is_available()


@dataclass(frozen=True)
class _Chain:
    conv: BoundOp
    add: BoundOp | None
    relu: BoundOp | None
    other_slot: int  # the Add input that is not the Conv output
    geo: Geometry

    @property
    def ops(self) -> tuple[BoundOp, ...]:
        return tuple(op for op in (self.conv, self.add, self.relu) if op is not None)


def _readers(ops: Sequence[BoundOp]) -> dict[tuple[str, int], list[int]]:
    """The positions of the ops reading each blob version ``(name, position of its writer)``."""
    writer: dict[str, int] = {}
    readers: dict[tuple[str, int], list[int]] = {}
    for pos, op in enumerate(ops):
        for name in op.inputs:
            if name in writer:
                readers.setdefault((name, writer[name]), []).append(pos)
        for name in op.outputs:
            writer[name] = pos
    return readers


def _sole_reader(ops: Sequence[BoundOp], readers: dict, pos: int, protected: set[str]) -> int | None:
    """The position of the only op reading output 0 of op ``pos`` (read once), or None."""
    name = ops[pos].outputs[0]
    found = readers.get((name, pos), [])
    if name in protected or len(found) != 1 or ops[found[0]].inputs.count(name) != 1:
        return None
    return found[0]


def _plain_add(op: BoundOp) -> bool:
    kw = op.kwargs
    return not kw["broadcast"] and not kw["axis_str"] and kw["order"] == "NCHW"


def _geometry(conv: BoundOp, w: torch.Tensor) -> Geometry | None:
    """The Conv's 2-D geometry when oneDNN can run it as it is (symmetric pads, matching kernel)."""
    try:
        geo = resolve_geometry("Conv", 2, {k: v for k, v in conv.kwargs.items() if k != "group"})
    except Detectron2ExportError:
        return None  # the regular op reports it when it runs
    if not geo.symmetric_pads or (geo.kernel is not None and list(w.shape[2:]) != geo.kernel):
        return None
    return geo


def _is_parameter(name: str, params: Mapping[str, Any], written: set[str], dim: int) -> bool:
    """A float32 (or, under ``precision="bf16"``, bfloat16) CPU tensor of the init net's."""
    value = params.get(name)
    return name not in written and (_dense_float32(value, dim) or _dense_float32(value, dim, torch.bfloat16))


def _find_chains(ops: Sequence[BoundOp], params: Mapping[str, Any], protected: set[str]) -> list[_Chain]:
    written = {name for op in ops for name in op.outputs}
    readers = _readers(ops)
    chains = []
    for pos, op in enumerate(ops):
        if op.op_type != "Conv" or len(op.outputs) != 1 or not _is_parameter(op.inputs[1], params, written, 4):
            continue
        if len(op.inputs) > 2 and not _is_parameter(op.inputs[2], params, written, 1):
            continue
        geo = _geometry(op, params[op.inputs[1]])
        if geo is None:
            continue
        add = relu = None
        other_slot = 0
        nxt = _sole_reader(ops, readers, pos, protected)
        if nxt is not None and ops[nxt].op_type == "Add" and len(ops[nxt].outputs) == 1 and _plain_add(ops[nxt]):
            add = ops[nxt]
            other_slot = 1 - add.inputs.index(op.outputs[0])
            if add.inputs[other_slot] == op.outputs[0]:
                add = None
            else:
                nxt = _sole_reader(ops, readers, nxt, protected)
        if nxt is not None and ops[nxt].op_type == "Relu":
            relu = ops[nxt]
        chains.append(_Chain(op, add, relu, other_slot, geo))
    return chains


def _dense_float32(value: Any, dim: int, dtype: torch.dtype = torch.float32) -> bool:
    return isinstance(value, torch.Tensor) and value.dim() == dim and value.dtype == dtype and value.device.type == "cpu"


def _runs_through(chain: _Chain, ops: Sequence[BoundOp], positions: dict[int, int]) -> bool:
    """No op between the chain's first and last writes a blob the fused op reads."""
    first, last = positions[chain.conv.index], positions[chain.ops[-1].index]
    members = {op.index for op in chain.ops}
    reads = set(chain.conv.inputs)
    if chain.add is not None:
        reads.add(chain.add.inputs[chain.other_slot])
    return not any(set(ops[p].outputs) & reads for p in range(first + 1, last) if ops[p].index not in members)


def _fused_kernel(chain: _Chain, params: Mapping[str, Any], keep_dtype: bool = False) -> Callable[..., tuple]:
    """``fn(X, [bias], [other]) -> (Y,)``: the oneDNN fused convolution, or the chain's ops one by one.

    It computes in the filter's dtype (bfloat16 under ``precision="bf16"``: X, bias and the Add
    operand are cast on the way in, Y back to float32 on the way out unless ``keep_dtype``: when
    only fused convolutions read Y, they take it in bfloat16 as it is)."""
    conv, geo = chain.conv, chain.geo
    group = conv.kwargs["group"]
    w = params[conv.inputs[1]]
    dtype = w.dtype
    # Reordered for a nominal input size; another size reuses it when oneDNN picks the same format.
    try:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            w, geo.pad_begin, geo.stride, geo.dilation, group, [1, w.shape[1] * group, 64, 64]
        )
    except RuntimeError as e:  # e.g. a group that does not divide the filters, a dilation < 1
        raise OperatorArgumentError(
            f"{describe_op('', conv.index, conv)}: filter {tuple(w.shape)} with group={group}, "
            f"strides={list(geo.stride)}, pads={list(geo.pad_begin)}, dilations={list(geo.dilation)} is not a "
            f"valid convolution ({e})"
        ) from None
    has_bias = len(conv.inputs) > 2
    unary = "relu" if chain.relu is not None else "none"

    def unfused(x: torch.Tensor, b: torch.Tensor | None, other: torch.Tensor | None) -> tuple:
        y = conv.fn(*((x, w, b) if has_bias else (x, w)), **conv.kwargs)
        if chain.add is not None:
            operands = [None, None]
            operands[1 - chain.other_slot], operands[chain.other_slot] = y[0], other
            y = chain.add.fn(*operands, **chain.add.kwargs)
        if chain.relu is not None:
            y = chain.relu.fn(y[0], **chain.relu.kwargs)
        return y

    def fused(x: torch.Tensor, *rest: torch.Tensor) -> tuple:
        b = rest[0] if has_bias else None
        other = rest[-1] if chain.add is not None else None
        if not _dense_input(x, w.shape[1] * group, dtype) or (b is not None and not b.is_floating_point()):
            return unfused(x, b, other)
        if dtype == torch.float32 and not conv2d_uses_onednn(x, w, geo, group):
            return unfused(x, b, other)  # small inputs: conv2d's native kernel, whose results the net had
        x, b = x.to(dtype), None if b is None else b.to(dtype)
        if other is None:
            y = _POINTWISE(x, packed, b, geo.pad_begin, geo.stride, geo.dilation, group, unary, [], "")
        elif _dense_input(other, w.shape[0], dtype) and tuple(other.shape) == _conv_output_shape(x, w, geo):
            y = _POINTWISE.binary(
                x, other.to(dtype), packed, b, geo.pad_begin, geo.stride, geo.dilation, group, "add", None,
                None if unary == "none" else unary, [], None,
            )
        else:
            return unfused(x, b, other)
        return (y if keep_dtype else fused_output(y),)

    return fused


def conv2d_uses_onednn(x: torch.Tensor, w: torch.Tensor, geo: Geometry, group: int) -> bool:
    """Whether this torch's float32 ``conv2d`` runs oneDNN for these shapes (``ConvParams::use_mkldnn``
    in aten/src/ATen/native/Convolution.cpp); for the others (1x1 filters on one thread, small
    single-image inputs) it runs its native kernel, and so does the fused op, to keep its results."""
    if not torch.backends.mkldnn.enabled:
        return False
    one_by_one = w.shape[-1] == 1 and w.shape[-2] == 1
    strided_or_dilated = any(s != 1 for s in geo.stride) or any(d != 1 for d in geo.dilation)
    if one_by_one and not (strided_or_dilated or x.shape[0] >= 16 or torch.get_num_threads() > 1):
        return False
    return group > 1 or (w.shape[-1] > 3 and w.shape[-2] > 3) or x.shape[0] > 1 or x.numel() > 20480


def _dense_input(x: Any, channels: int, dtype: torch.dtype = torch.float32) -> bool:
    """A dense 4-D CPU float32 tensor of ``channels`` channels (or bfloat16 when computing in it)."""
    return (
        (_dense_float32(x, 4) or (dtype == torch.bfloat16 and _dense_float32(x, 4, dtype)))
        and x.shape[1] == channels
        and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))
        and x.numel() > 0
    )


def _conv_output_shape(x: torch.Tensor, w: torch.Tensor, geo: Geometry) -> tuple[int, ...]:
    spatial = [
        (size + 2 * p - d * (k - 1) - 1) // s + 1
        for size, p, d, k, s in zip(x.shape[2:], geo.pad_begin, geo.dilation, w.shape[2:], geo.stride)
    ]
    return (x.shape[0], w.shape[0], *spatial)


def fold_parameter_copies(ops: Sequence[BoundOp], params: MutableMapping[str, Any], protected: set[str]) -> list[BoundOp]:
    """``ops`` without the ``Copy`` ops of parameters, their outputs stored in ``params`` instead.

    The exporter shares equal initializers (e.g. the zero biases of a randomly initialised model)
    and materialises each use with a ``Copy`` in the predict net; such a blob is then written by the
    net, so fusion would not take it as a filter or bias, and every run copies it again. A Copy is
    folded when its input is a parameter tensor the net never writes, and its output is written by
    no other op and is not a net output; the output then shares the parameter (parameters are never
    written in place, ``inplace.py``).
    """
    writes = Counter(name for op in ops for name in op.outputs)
    kept = []
    for op in ops:
        source = params.get(op.inputs[0]) if op.op_type == "Copy" and len(op.inputs) == 1 else None
        if (
            isinstance(source, torch.Tensor)
            and writes[op.inputs[0]] == 0
            and len(op.outputs) == 1
            and writes[op.outputs[0]] == 1
            and op.outputs[0] not in protected
        ):
            params[op.outputs[0]] = source
            writes[op.outputs[0]] = 0
            continue
        kept.append(op)
    return kept


def fuse_convolutions(ops: Sequence[BoundOp], params: Mapping[str, Any], protected: set[str]) -> list[BoundOp]:
    """``ops`` with every fusable Conv chain replaced by one op (see the module docstring).

    ``params``: the blobs the init net produced (filters and biases are read from it once);
    ``protected``: the net's external outputs, which must keep their own values.
    """
    if not fusion_available():
        return list(ops)
    positions = {op.index: pos for pos, op in enumerate(ops)}
    fused_at: dict[int, BoundOp] = {}
    chains: dict[int, _Chain] = {}
    dropped: set[int] = set()
    for chain in _find_chains(ops, params, protected):
        if not _runs_through(chain, ops, positions) or any(op.index in dropped for op in chain.ops):
            continue
        conv, last = chain.conv, chain.ops[-1]
        inputs = [conv.inputs[0], *conv.inputs[2:3]]
        if chain.add is not None:
            inputs.append(chain.add.inputs[chain.other_slot])
        w_shape = params[conv.inputs[1]].shape
        fused_at[positions[last.index]] = BoundOp(
            conv.index,
            "+".join(op.op_type for op in chain.ops),
            _fused_kernel(chain, params),
            {},
            tuple(inputs),
            last.outputs,
            flops=lambda args, results, w_shape=w_shape: conv_flops(w_shape, results[0].shape),
        )
        dropped.update(op.index for op in chain.ops)
        chains[positions[last.index]] = chain
    fused = [fused_at.get(pos, op) for pos, op in enumerate(ops) if pos in fused_at or op.index not in dropped]
    return _keep_bf16_between_convolutions(fused, {fused_at[pos].index: chain for pos, chain in chains.items()}, params, protected)


def _keep_bf16_between_convolutions(
    ops: list[BoundOp], chains: dict[int, _Chain], params: Mapping[str, Any], protected: set[str]
) -> list[BoundOp]:
    """Under bf16, fused convolutions whose output only fused convolutions read keep it in bfloat16
    (no cast to float32 and back between them); every other reader still gets float32."""
    readers = _readers(ops)
    result = list(ops)
    for pos, op in enumerate(ops):
        chain = chains.get(op.index)
        if chain is None or params[chain.conv.inputs[1]].dtype != torch.bfloat16 or op.outputs[0] in protected:
            continue
        found = readers.get((op.outputs[0], pos), [])
        # a fused op reads net-computed blobs only as X or the Add operand (its bias is a parameter)
        if found and all(ops[r].index in chains for r in found):
            result[pos] = replace(op, fn=_fused_kernel(chain, params, keep_dtype=True))
    return result
