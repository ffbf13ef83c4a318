"""Conversions between torch tensors and Caffe2 ``TensorProto`` messages, and Caffe2's dtype numbers.

Caffe2's ``TensorProto.DataType`` numbers are also what the ``Cast`` op's ``to`` and
``ConstantFill``'s ``dtype`` arguments hold, so the mapping lives here once.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import OperatorArgumentError, ProtobufError
from .packed import extend_packed
from .proto import caffe2_pb2

DataType = caffe2_pb2.TensorProto.DataType

_TORCH_DTYPE_OF: dict[int, torch.dtype] = {
    DataType.Value("FLOAT"): torch.float32,
    DataType.Value("INT32"): torch.int32,
    DataType.Value("BYTE"): torch.uint8,
    DataType.Value("BOOL"): torch.bool,
    DataType.Value("UINT8"): torch.uint8,
    DataType.Value("INT8"): torch.int8,
    DataType.Value("UINT16"): torch.uint16,
    DataType.Value("INT16"): torch.int16,
    DataType.Value("INT64"): torch.int64,
    DataType.Value("FLOAT16"): torch.float16,
    DataType.Value("DOUBLE"): torch.float64,
}

_DATA_TYPE_OF: dict[torch.dtype, int] = {
    torch.float32: DataType.Value("FLOAT"),
    torch.int32: DataType.Value("INT32"),
    torch.bool: DataType.Value("BOOL"),
    torch.uint8: DataType.Value("UINT8"),
    torch.int8: DataType.Value("INT8"),
    torch.uint16: DataType.Value("UINT16"),
    torch.int16: DataType.Value("INT16"),
    torch.int64: DataType.Value("INT64"),
    torch.float16: DataType.Value("FLOAT16"),
    torch.float64: DataType.Value("DOUBLE"),
}

# Types stored one element per int32_data entry (float16 as its 16-bit pattern).
_INT32_STORED = {"INT32", "BOOL", "UINT8", "INT8", "UINT16", "INT16", "FLOAT16"}


def torch_dtype(data_type: int, where: str = "Cast") -> torch.dtype:
    """Caffe2 DataType number -> torch dtype (STRING and the special types have none)."""
    dtype = _TORCH_DTYPE_OF.get(data_type)
    if dtype is None:
        names = {v: k for k, v in DataType.items()}
        raise OperatorArgumentError(
            f"{where}: data type={data_type} ({names.get(data_type, 'not a DataType')}), "
            f"expected one of {sorted((names[k], k) for k in _TORCH_DTYPE_OF)}"
        )
    return dtype


def caffe2_data_type(dtype: torch.dtype) -> int:
    """torch dtype -> Caffe2 DataType number."""
    if dtype not in _DATA_TYPE_OF:
        raise ValueError(f"tensor dtype={dtype} has no Caffe2 DataType")
    return _DATA_TYPE_OF[dtype]


# Field numbers of TensorProto's ``float_data`` and ``double_data``.
_FLOAT_DATA_FIELD = 3
_DOUBLE_DATA_FIELD = 9


def tensor_to_proto(tensor: torch.Tensor | np.ndarray, name: str = "") -> caffe2_pb2.TensorProto:
    """Serialize a tensor the way Caffe2's TensorSerializer does (one typed field per dtype)."""
    t = torch.as_tensor(tensor).detach().cpu().contiguous()
    proto = caffe2_pb2.TensorProto(dims=list(t.shape), data_type=caffe2_data_type(t.dtype))
    if name:
        proto.name = name
    type_name = DataType.Name(proto.data_type)
    flat = t.reshape(-1)
    if type_name == "FLOAT":
        extend_packed(proto, _FLOAT_DATA_FIELD, flat.numpy(), "<f4")
    elif type_name == "DOUBLE":
        extend_packed(proto, _DOUBLE_DATA_FIELD, flat.numpy(), "<f8")
    elif type_name == "INT64":
        proto.int64_data.extend(flat.tolist())
    elif type_name == "FLOAT16":
        proto.int32_data.extend(flat.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).tolist())
    else:
        proto.int32_data.extend(flat.to(torch.int64).tolist())
    return proto


def _proto_where(proto: caffe2_pb2.TensorProto) -> str:
    return f"TensorProto {proto.name!r}" if proto.name else "TensorProto"


def _from_repeated(field, np_dtype: type) -> torch.Tensor:
    # numpy reads a repeated scalar field in one pass (much faster than a Python list for big tensors)
    return torch.from_numpy(np.array(field, dtype=np_dtype))


def proto_to_tensor(proto: caffe2_pb2.TensorProto) -> torch.Tensor | np.ndarray:
    """Deserialize a ``TensorProto``; STRING tensors become numpy object arrays of bytes."""
    where = _proto_where(proto)
    dims = list(proto.dims)
    if any(d < 0 for d in dims):
        raise ProtobufError(f"{where}: dims={dims}, expected non-negative sizes")
    numel = math.prod(dims)
    type_name = DataType.Name(proto.data_type) if proto.data_type in DataType.values() else None
    if proto.data_format == caffe2_pb2.TensorProto.FMT_BFLOAT16 and type_name == "FLOAT":
        if len(proto.raw_data) != 2 * numel:
            raise ProtobufError(f"{where}: raw_data has {len(proto.raw_data)} bytes, expected {2 * numel} (bfloat16, dims {dims})")
        raw = np.frombuffer(proto.raw_data, dtype="<u2").astype(np.uint32) << 16
        values: torch.Tensor | np.ndarray = torch.from_numpy(raw.view(np.float32).copy())
    elif proto.data_format != caffe2_pb2.TensorProto.FMT_PROTOBUF:
        raise ProtobufError(f"{where}: data_format={proto.data_format}, expected 0 (FMT_PROTOBUF) or 1 (FMT_BFLOAT16 for FLOAT)")
    elif type_name == "STRING":
        values = np.array(list(proto.string_data), dtype=object)
    elif type_name == "FLOAT":
        values = _from_repeated(proto.float_data, np.float32)
    elif type_name == "DOUBLE":
        values = _from_repeated(proto.double_data, np.float64)
    elif type_name == "INT64":
        values = _from_repeated(proto.int64_data, np.int64)
    elif type_name == "BYTE" or (type_name in ("UINT8", "INT8", "BOOL") and proto.byte_data):
        values = torch.frombuffer(bytearray(proto.byte_data), dtype=torch.uint8) if proto.byte_data else torch.zeros(0, dtype=torch.uint8)
        values = values.view(_TORCH_DTYPE_OF[proto.data_type]) if type_name == "INT8" else values.to(_TORCH_DTYPE_OF[proto.data_type])
    elif type_name in _INT32_STORED:
        ints = _from_repeated(proto.int32_data, np.int32)
        if type_name == "FLOAT16":
            values = ints.to(torch.int16).view(torch.float16)
        else:
            values = ints.to(_TORCH_DTYPE_OF[proto.data_type])
    else:
        raise ProtobufError(
            f"{where}: data_type={proto.data_type} ({type_name or 'unknown'}), expected a tensor DataType "
            f"({sorted(DataType.Name(k) for k in _TORCH_DTYPE_OF)} or STRING)"
        )
    if len(values) != numel:
        raise ProtobufError(f"{where}: {len(values)} {type_name} values, expected {numel} (dims {dims})")
    return values.reshape(dims)
