"""Small helpers shared by the translation rules."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import onnx

from ....caffe2.proto import caffe2_pb2
from ...protobuf_utils import make_operator_def


def node_outputs(node: onnx.NodeProto) -> list[str]:
    """The node's outputs without trailing omitted optional ones (empty names)."""
    outputs = list(node.output)
    while outputs and outputs[-1] == "":
        outputs.pop()
    return outputs


def c2_op(
    node: onnx.NodeProto,
    op_type: str,
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    **args: Any,
) -> caffe2_pb2.OperatorDef:
    """A Caffe2 op named after ``node``, reading/writing the node's blobs unless told otherwise."""
    return make_operator_def(
        op_type,
        list(node.input) if inputs is None else inputs,
        node_outputs(node) if outputs is None else outputs,
        name=node.name,
        **args,
    )
