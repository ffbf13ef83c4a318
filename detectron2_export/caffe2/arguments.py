"""Caffe2 ``Argument`` messages: building them from Python values and decoding them back.

``make_argument`` follows ``caffe2.python.utils.MakeArgument`` (bool/int -> ``i``, float -> ``f``,
str/bytes -> ``s``, lists -> ``floats``/``ints``/``strings``, float32 arrays -> ``floats``), extended
with ``t``/``tensors`` for torch tensors and TensorProtos. ``decode_argument`` is its inverse, used
by the executor before the registry validates the values.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from google.protobuf.message import Message

from ..errors import OperatorArgumentError
from .packed import extend_packed
from .proto import caffe2_pb2
from .tensor_proto import proto_to_tensor, tensor_to_proto

_NO_DEFAULT: Any = object()



def to_float32(x: float) -> float:
    """``x`` rounded to the nearest float32, as an ``Argument.f`` field holds it and reads back."""
    return float(np.float32(x))


def is_int(v: Any) -> bool:
    """A Python or numpy integer, not a bool (which ``int`` also is)."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def make_argument(name: str, value: Any) -> caffe2_pb2.Argument:
    """A Python value -> ``Argument`` with the one matching value field set."""
    arg = caffe2_pb2.Argument()
    _fill_argument(arg, name, value)
    return arg


def add_argument(op: caffe2_pb2.OperatorDef, name: str, value: Any) -> None:
    """Append ``make_argument(name, value)`` to ``op.arg``, built in place.

    Appending a finished message copies it: for a weight of 100M floats that costs seconds and a
    second copy in memory. On an error ``op`` is left as it was.
    """
    try:
        _fill_argument(op.arg.add(), name, value)
    except BaseException:
        del op.arg[-1]
        raise


def _fill_argument(arg: caffe2_pb2.Argument, name: str, value: Any) -> None:
    arg.name = name
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        extend_packed(arg, _FLOATS_FIELD, value, "<f4")
        return
    if isinstance(value, np.ndarray) and value.dtype.kind == "i" and value.size:
        arg.ints.extend(value.reshape(-1).astype(np.int64).tolist())
        return
    if isinstance(value, np.ndarray):
        value = value.reshape(-1).tolist()
    elif isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, torch.Tensor):
        arg.t.CopyFrom(tensor_to_proto(value))
    elif isinstance(value, float):
        arg.f = value
    elif isinstance(value, (bool, int)):
        arg.i = int(value)
    elif isinstance(value, bytes):
        arg.s = value
    elif isinstance(value, str):
        arg.s = value.encode("utf-8")
    elif isinstance(value, caffe2_pb2.NetDef):
        arg.n.CopyFrom(value)
    elif isinstance(value, caffe2_pb2.TensorProto):
        arg.t.CopyFrom(value)
    elif isinstance(value, Message):
        arg.s = value.SerializeToString()
    elif isinstance(value, Iterable):
        _set_repeated(arg, list(value))
    else:
        raise ValueError(f"make_argument: {name}={value!r}, expected a number, string, list, tensor or NetDef")


# Field number of Argument's ``repeated float floats``.
_FLOATS_FIELD = 5


def _set_repeated(arg: caffe2_pb2.Argument, values: list) -> None:
    if all(isinstance(v, (float, np.floating)) for v in values):
        arg.floats.extend(float(v) for v in values)
    elif all(is_int(v) or isinstance(v, (bool, np.bool_)) for v in values):
        arg.ints.extend(int(v) for v in values)
    elif all(isinstance(v, (bytes, str)) for v in values):
        arg.strings.extend(v.encode("utf-8") if isinstance(v, str) else v for v in values)
    elif all(isinstance(v, caffe2_pb2.NetDef) for v in values):
        arg.nets.extend(values)
    elif all(isinstance(v, (caffe2_pb2.TensorProto, torch.Tensor)) for v in values):
        arg.tensors.extend(v if isinstance(v, caffe2_pb2.TensorProto) else tensor_to_proto(v) for v in values)
    elif all(isinstance(v, Message) for v in values):
        arg.strings.extend(v.SerializeToString() for v in values)
    else:
        raise ValueError(
            f"make_argument: {arg.name}={values!r}, expected a list of all floats, all ints, all strings, "
            "all tensors or all NetDefs"
        )


def _decode_bytes(b: bytes) -> str | bytes:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b


def decode_argument(arg: caffe2_pb2.Argument, where: str = "Argument", as_array: bool = False) -> Any:
    """``Argument`` -> Python value: i -> int, f -> float, s -> str (bytes if not UTF-8),
    repeated fields -> lists, t/tensors -> torch tensors, n/nets -> NetDef. No value -> [].

    ``as_array``: ``floats``/``ints`` become a float32/int64 numpy array instead of a list (one
    copy, no Python numbers: fill ops hold millions of values)."""
    set_fields = [d.name for d, _ in arg.ListFields() if d.name != "name"]  # one call, no repeated field copied
    if len(set_fields) > 1:
        raise OperatorArgumentError(f"{where}: argument {arg.name!r} sets fields {set_fields}, expected exactly one")
    if not set_fields:
        return []
    field = set_fields[0]
    if field == "f":
        return arg.f
    if field == "i":
        return arg.i
    if field == "s":
        return _decode_bytes(arg.s)
    if field == "t":
        return proto_to_tensor(arg.t)
    if field == "n":
        return arg.n
    if field == "floats":
        return np.asarray(arg.floats, dtype=np.float32) if as_array else list(arg.floats)
    if field == "ints":
        return np.asarray(arg.ints, dtype=np.int64) if as_array else list(arg.ints)
    if field == "strings":
        return [_decode_bytes(s) for s in arg.strings]
    if field == "tensors":
        return [proto_to_tensor(t) for t in arg.tensors]
    if field == "nets":
        return list(arg.nets)
    return list(arg.qtensors)


def decode_arguments(
    args: Iterable[caffe2_pb2.Argument], where: str, arrays: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A repeated ``arg`` field -> {name: value}; duplicate names are an error. Arguments named in
    ``arrays`` decode repeated numbers as numpy arrays (see ``decode_argument``)."""
    decoded: dict[str, Any] = {}
    for arg in args:
        if arg.name in decoded:
            raise OperatorArgumentError(f"{where}: argument {arg.name!r} given twice")
        decoded[arg.name] = decode_argument(arg, where, arg.name in arrays)
    return decoded


def _describe(op_or_net: caffe2_pb2.OperatorDef | caffe2_pb2.NetDef) -> str:
    if isinstance(op_or_net, caffe2_pb2.OperatorDef):
        return f"{op_or_net.type} op"
    return f"NetDef {op_or_net.name!r}"


def get_arg(op_or_net: caffe2_pb2.OperatorDef | caffe2_pb2.NetDef, name: str, default: Any = _NO_DEFAULT) -> Any:
    """The decoded value of argument ``name`` of an OperatorDef or NetDef (``default`` if absent)."""
    for arg in op_or_net.arg:
        if arg.name == name:
            return decode_argument(arg, _describe(op_or_net))
    if default is _NO_DEFAULT:
        raise KeyError(f"argument {name!r} not found; has {[a.name for a in op_or_net.arg]}")
    return default
