"""The net executor: a NetDef's operators, resolved and bound once, then run in order over a blob dict.

Binding (op lookup, input/output counts, argument decoding and validation) happens when a ``Net`` is
created, so running it costs one dict lookup per input and output plus the op call. Every error is
re-raised with the op's place in the net: its index, type, inputs and outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import Detectron2ExportError, OperatorInputError
from .arguments import decode_arguments
from .inplace import INPLACE_KERNELS, plan_inplace
from .proto import caffe2_pb2
from .registry import OpSpec, bind_args, get_op


@dataclass(frozen=True, slots=True)
class BoundOp:
    """One OperatorDef, ready to run: ``fn(*blobs[inputs], **kwargs)`` -> blobs[outputs]."""

    index: int
    op_type: str
    fn: Callable[..., tuple]
    kwargs: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    inplace_fn: Callable[..., tuple | None] | None = None
    """Writes into input 0 (see ``inplace.py``); returns None when ``fn`` must run instead."""
    contiguous_inputs: tuple[int, ...] = ()
    """Inputs made row-major before the call, the copy stored back in the blob (``layout.py``)."""


def describe_op(net_name: str, index: int, op: caffe2_pb2.OperatorDef | BoundOp) -> str:
    op_type = op.op_type if isinstance(op, BoundOp) else op.type
    inputs = list(op.inputs if isinstance(op, BoundOp) else op.input)
    outputs = list(op.outputs if isinstance(op, BoundOp) else op.output)
    return f"net {net_name!r} op #{index} {op_type!r} (inputs {inputs}, outputs {outputs})"


def with_context(err: Exception, context: str) -> Exception:
    """The same error class with ``context`` prefixed; non-project errors become OperatorInputError."""
    if isinstance(err, Detectron2ExportError):
        try:
            return type(err)(f"{context}: {err}")
        except TypeError:
            pass
    return OperatorInputError(f"{context}: {type(err).__name__}: {err}")


def _check_count(spec: OpSpec, what: str, n: int, bounds: tuple[int, int]) -> None:
    lo, hi = bounds
    if n < lo or (hi != -1 and n > hi):
        expected = f"at least {lo}" if hi == -1 else (f"{lo}" if lo == hi else f"{lo} to {hi}")
        raise OperatorInputError(f"{spec.op_type}: {n} {what}, expected {expected}")


def bind_operator(op: caffe2_pb2.OperatorDef, index: int = 0, net_name: str = "") -> BoundOp:
    """Resolve the op type, check input/output counts and bind the arguments."""
    try:
        spec = get_op(op.type)
        _check_count(spec, "inputs", len(op.input), spec.n_inputs)
        _check_count(spec, "outputs", len(op.output), spec.n_outputs)
        kwargs = bind_args(spec, decode_arguments(op.arg, op.type, spec.array_args))
    except Exception as e:
        raise with_context(e, describe_op(net_name, index, op)) from e
    contiguous = tuple(i for i in spec.contiguous_inputs if i < len(op.input))
    return BoundOp(
        index, op.type, spec.fn, kwargs, tuple(op.input), tuple(op.output), contiguous_inputs=contiguous
    )


class Net:
    """A created net: bound ops plus the NetDef they came from.

    ``inplace=True`` lets element-wise ops overwrite dead intermediate blobs (``inplace.py``): the
    external outputs are unchanged, but intermediate blobs may hold a later op's result.
    """

    def __init__(self, net_def: caffe2_pb2.NetDef, existing_blobs: Iterable[str] = (), *, inplace: bool = False):
        self.proto = net_def
        self.name = net_def.name
        ops = [bind_operator(op, i, net_def.name) for i, op in enumerate(net_def.op)]
        if inplace:
            plan = plan_inplace([(op.op_type, op.inputs, op.outputs) for op in ops], set(net_def.external_output))
            ops = [replace(op, inplace_fn=INPLACE_KERNELS[op.op_type]) if op.index in plan else op for op in ops]
        self.ops = tuple(ops)
        self._check_inputs_exist(set(existing_blobs))

    def _check_inputs_exist(self, known: set[str]) -> None:
        known |= set(self.proto.external_input)
        for op in self.ops:
            for name in op.inputs:
                if name not in known:
                    raise OperatorInputError(
                        f"{describe_op(self.name, op.index, op)}: input blob {name!r} does not exist in the "
                        "workspace, is not an external input and no earlier op produces it"
                    )
            known.update(op.outputs)

    def run(self, blobs: MutableMapping[str, Any]) -> None:
        """Run every op in order, reading and writing ``blobs`` (name -> tensor)."""
        op = None
        try:
            for op in self.ops:
                try:
                    args = [blobs[name] for name in op.inputs]
                except KeyError as e:
                    raise OperatorInputError(f"input blob {e.args[0]!r} does not exist in the workspace") from None
                for i, value in enumerate(args):
                    if value is None:
                        raise OperatorInputError(f"input blob {op.inputs[i]!r} is empty (never fed or computed)")
                for i in op.contiguous_inputs:
                    value = args[i]
                    if isinstance(value, torch.Tensor) and not value.is_contiguous():
                        args[i] = blobs[op.inputs[i]] = value.contiguous()
                results = None if op.inplace_fn is None else op.inplace_fn(*args, **op.kwargs)
                if results is None:
                    results = op.fn(*args, **op.kwargs)
                if len(results) < len(op.outputs):
                    raise OperatorInputError(f"computed {len(results)} outputs, expected {len(op.outputs)}")
                for name, value in zip(op.outputs, results):
                    blobs[name] = value
        except Exception as e:
            raise with_context(e, describe_op(self.name, op.index, op)) from e
