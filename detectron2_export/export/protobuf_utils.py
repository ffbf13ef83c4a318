"""Reading and writing Caffe2 protobuf arguments (upstream ``detectron2.export.shared`` helpers).

``make_operator_def`` plays the part of ``core.CreateOperator`` (arguments built by the runtime's
``make_argument``, Caffe2's ``MakeArgument``); ``get_pb_arg*`` read an argument of an
``OperatorDef`` or ``NetDef``; ``check_set_pb_arg`` is the add-if-missing, must-be-equal-if-present
setter used for the metadata stored in the predict net (SPEC 3.12).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Union

from ..caffe2.arguments import make_argument, to_float32
from ..caffe2.proto import caffe2_pb2
from ..errors import ExportError, ProtobufError

logger = logging.getLogger(__name__)

ArgHolder = Union[caffe2_pb2.OperatorDef, caffe2_pb2.NetDef]

_REPEATED_FIELDS = ("floats", "ints", "strings", "nets", "tensors", "qtensors")


def make_operator_def(
    op_type: str,
    inputs: Sequence[str],
    outputs: Sequence[str],
    name: str = "",
    device_option: caffe2_pb2.DeviceOption | None = None,
    **args: Any,
) -> caffe2_pb2.OperatorDef:
    """An ``OperatorDef`` with one argument per keyword, in keyword order (``None`` values skipped)."""
    op = caffe2_pb2.OperatorDef(type=op_type)
    if name:
        op.name = name
    op.input.extend(inputs)
    op.output.extend(outputs)
    op.arg.extend(make_argument(k, v) for k, v in args.items() if v is not None)
    if device_option is not None:
        op.device_option.CopyFrom(device_option)
    return op


def get_pb_arg(pb: ArgHolder, arg_name: str) -> caffe2_pb2.Argument | None:
    for arg in pb.arg:
        if arg.name == arg_name:
            return arg
    return None


def get_pb_arg_valf(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return arg.f if arg is not None else default_val


def get_pb_arg_floats(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return [float(v) for v in arg.floats] if arg is not None else default_val


def get_pb_arg_ints(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return [int(v) for v in arg.ints] if arg is not None else default_val


def get_pb_arg_vali(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return arg.i if arg is not None else default_val


def get_pb_arg_vals(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return arg.s if arg is not None else default_val


def get_pb_arg_valstrings(pb: ArgHolder, arg_name: str, default_val: Any) -> Any:
    arg = get_pb_arg(pb, arg_name)
    return list(arg.strings) if arg is not None else default_val


def _normalized(arg_attr: str, arg_value: Any) -> Any:
    """The value as it reads back from field ``arg_attr`` (floats rounded to float32, str encoded)."""
    if arg_attr == "f":
        return to_float32(arg_value)
    if arg_attr == "floats":
        return [to_float32(v) for v in arg_value]
    if arg_attr == "i":
        return int(arg_value)
    if arg_attr == "ints":
        return [int(v) for v in arg_value]
    if arg_attr == "s":
        return arg_value.encode("utf-8") if isinstance(arg_value, str) else bytes(arg_value)
    if arg_attr == "strings":
        return [v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in arg_value]
    raise ProtobufError(f"check_set_pb_arg: arg_attr={arg_attr!r}, expected one of f, i, s, floats, ints, strings")


def _read_field(arg: caffe2_pb2.Argument, arg_attr: str) -> Any:
    value = getattr(arg, arg_attr)
    return list(value) if arg_attr in _REPEATED_FIELDS else value


def _write_field(arg: caffe2_pb2.Argument, arg_attr: str, value: Any) -> None:
    if arg_attr in _REPEATED_FIELDS:
        field = getattr(arg, arg_attr)
        del field[:]
        field.extend(value)
    else:
        setattr(arg, arg_attr, value)


def check_set_pb_arg(pb: ArgHolder, arg_name: str, arg_attr: str, arg_value: Any, allow_override: bool = False) -> None:
    """Add argument ``arg_name`` (field ``arg_attr``) if missing; if present its value must equal
    ``arg_value`` (after float32 rounding), unless ``allow_override`` replaces it with a warning."""
    value = _normalized(arg_attr, arg_value)
    arg = get_pb_arg(pb, arg_name)
    if arg is None:
        arg = pb.arg.add(name=arg_name)
        _write_field(arg, arg_attr, value)
        return
    existing = _read_field(arg, arg_attr)
    if existing == value:
        return
    if not allow_override:
        raise ExportError(
            f"check_set_pb_arg: {arg_name}={existing!r} is already set, cannot set it to {value!r} "
            "(pass allow_override=True to replace it)"
        )
    logger.warning("Override argument %s: %r -> %r", arg_name, existing, value)
    _write_field(arg, arg_attr, value)
