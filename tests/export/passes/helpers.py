"""Hand-built NetDefs for pass tests."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2


def op(op_type: str, inputs: Sequence[str], outputs: Sequence[str], **args: Any) -> caffe2_pb2.OperatorDef:
    """An OperatorDef whose keywords are all arguments (``name`` included, as AliasWithName has one)."""
    return caffe2_pb2.OperatorDef(
        type=op_type, input=inputs, output=outputs, arg=[make_argument(k, v) for k, v in args.items()]
    )


def net(
    ops: Sequence[caffe2_pb2.OperatorDef],
    external_input: Sequence[str] = (),
    external_output: Sequence[str] = (),
    name: str = "net",
) -> caffe2_pb2.NetDef:
    result = caffe2_pb2.NetDef(name=name, external_input=external_input, external_output=external_output)
    result.op.extend(ops)
    return result


def io(net_def: caffe2_pb2.NetDef) -> list[tuple[str, list[str], list[str]]]:
    """(type, inputs, outputs) of every op: what a before/after comparison looks at."""
    return [(o.type, list(o.input), list(o.output)) for o in net_def.op]
