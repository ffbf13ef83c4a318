"""Test helpers: run one Caffe2 operator through the real NetDef -> Workspace -> executor path."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.registry import get_op, registered_ops
from detectron2_export.caffe2.workspace import Workspace


def make_op(op_type: str, inputs: list[str], outputs: list[str], **args: Any) -> caffe2_pb2.OperatorDef:
    """An OperatorDef with ``args`` converted by ``make_argument`` (in keyword order)."""
    return caffe2_pb2.OperatorDef(
        type=op_type, input=inputs, output=outputs, arg=[make_argument(k, v) for k, v in args.items()]
    )


def _default_num_outputs(op_type: str) -> int:
    if op_type not in registered_ops():
        return 1  # the executor reports the unknown op, with its context
    lo, hi = get_op(op_type).n_outputs
    return lo if hi == -1 else hi


def run_single_op(
    op_type: str, inputs: list[torch.Tensor | np.ndarray], *, num_outputs: int | None = None, **args: Any
) -> tuple[Any, ...]:
    """Run ``op_type`` on ``inputs`` with ``args`` and return its outputs as stored (torch tensors).

    The op names as many outputs as its spec allows (optional ones included) unless ``num_outputs``
    says otherwise; inputs are blobs ``X0, X1, ...``, outputs ``Y0, Y1, ...``.
    """
    if num_outputs is None:
        num_outputs = _default_num_outputs(op_type)
    in_names = [f"X{i}" for i in range(len(inputs))]
    out_names = [f"Y{i}" for i in range(num_outputs)]
    net = caffe2_pb2.NetDef(name=f"single_{op_type}", op=[make_op(op_type, in_names, out_names, **args)])
    ws = Workspace(f"run_single_op_{op_type}")
    for name, value in zip(in_names, inputs):
        ws.FeedBlob(name, value)
    ws.RunNetOnce(net)
    return tuple(ws.fetch_tensor(name) for name in out_names)
