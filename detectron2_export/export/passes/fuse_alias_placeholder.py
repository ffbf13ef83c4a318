"""Turn ``AliasWithName`` markers into blob names, then drop them (SPEC 4.4.1).

This is how the exported nets get their stable names (``data``, ``im_info``, ``bbox_nms``...): the
marker's input is renamed to ``name`` (the producer's output instead when ``is_backward``), its
output too, which leaves an in-place ``name -> name`` no-op to delete.
"""

from __future__ import annotations

from ...caffe2.proto import caffe2_pb2
from ...errors import IllegalGraphTransformError
from ..protobuf_utils import get_pb_arg_vali, get_pb_arg_vals
from .ssa import rename_op_input, rename_op_output


def _alias_name(op: caffe2_pb2.OperatorDef, index: int) -> str:
    if len(op.input) != 1 or len(op.output) != 1:
        raise IllegalGraphTransformError(
            f"AliasWithName op #{index}: {len(op.input)} inputs and {len(op.output)} outputs, expected 1 and 1"
        )
    name = get_pb_arg_vals(op, "name", None)
    if not name:
        raise IllegalGraphTransformError(f"AliasWithName op #{index}: argument name is missing, expected a blob name")
    return name.decode("utf-8")


def fuse_alias_placeholder(predict_net: caffe2_pb2.NetDef, init_net: caffe2_pb2.NetDef) -> None:
    """Rename the blobs around every ``AliasWithName`` op to its ``name`` and remove the ops."""
    for i, op in enumerate(predict_net.op):
        if op.type != "AliasWithName":
            continue
        name = _alias_name(op, i)
        is_backward = bool(get_pb_arg_vali(op, "is_backward", 0))
        rename_op_input(predict_net, init_net, i, 0, name, from_producer=is_backward)
        rename_op_output(predict_net, i, 0, name)

    kept = []
    for i, op in enumerate(predict_net.op):
        if op.type != "AliasWithName":
            kept.append(op)
            continue
        name = _alias_name(op, i)
        if op.input[0] != name or op.output[0] != name:
            raise IllegalGraphTransformError(
                f"AliasWithName op #{i}: {op.input[0]!r} -> {op.output[0]!r} after renaming, "
                f"expected {name!r} -> {name!r}"
            )
    del predict_net.op[:]
    predict_net.op.extend(kept)
