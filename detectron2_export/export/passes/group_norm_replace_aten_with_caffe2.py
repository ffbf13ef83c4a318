"""``ATen`` group_norm fallback ops -> Caffe2 ``GroupNorm`` (SPEC 4.4.6).

Upstream left the ATen ``eps`` argument in place (Caffe2's GroupNorm reads ``epsilon`` and ignored
it, which is harmless only for the default 1e-5) and kept a zero ``cudnn_enabled``; here ``eps``
becomes ``epsilon`` and ``cudnn_enabled`` always goes, so the op carries only GroupNorm arguments.
"""

from __future__ import annotations

import logging

from ...caffe2.proto import caffe2_pb2
from ...errors import IllegalGraphTransformError
from ..protobuf_utils import get_pb_arg, get_pb_arg_vals

logger = logging.getLogger(__name__)

_RENAMED_ARGS = {"num_groups": "group", "eps": "epsilon"}
_DROPPED_ARGS = ("operator", "cudnn_enabled", "overload_name")


def group_norm_replace_aten_with_caffe2(predict_net: caffe2_pb2.NetDef) -> None:
    """Every ``ATen`` op with ``operator="group_norm"`` becomes ``GroupNorm`` (``num_groups`` -> ``group``)."""
    count = 0
    for index, op in enumerate(predict_net.op):
        if op.type != "ATen" or get_pb_arg_vals(op, "operator", None) != b"group_norm":
            continue
        num_groups = get_pb_arg(op, "num_groups")
        if num_groups is None or not num_groups.HasField("i"):
            raise IllegalGraphTransformError(f"ATen group_norm op #{index}: num_groups is missing, expected an int")
        kept = []
        for arg in op.arg:
            if arg.name not in _DROPPED_ARGS:
                kept.append(caffe2_pb2.Argument())
                kept[-1].CopyFrom(arg)
                kept[-1].name = _RENAMED_ARGS.get(arg.name, arg.name)
        del op.arg[:]
        op.arg.extend(kept)
        op.type = "GroupNorm"
        count += 1
    if count:
        logger.info("Replaced %d ATen operator(s) with GroupNorm", count)
