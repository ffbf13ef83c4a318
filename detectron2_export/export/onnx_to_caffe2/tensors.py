"""Element types and constant tensors: ONNX dtype -> Caffe2 DataType, numpy array -> fill op (SPEC 5.13)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...caffe2.proto import caffe2_pb2
from ...errors import UnsupportedOnnxNodeError
from ..protobuf_utils import make_operator_def

_C2 = caffe2_pb2.TensorProto

ONNX_TO_CAFFE2_DTYPE: dict[int, int] = {
    TensorProto.FLOAT: _C2.FLOAT,
    TensorProto.UINT8: _C2.UINT8,
    TensorProto.INT8: _C2.INT8,
    TensorProto.UINT16: _C2.UINT16,
    TensorProto.INT16: _C2.INT16,
    TensorProto.INT32: _C2.INT32,
    TensorProto.INT64: _C2.INT64,
    TensorProto.STRING: _C2.STRING,
    TensorProto.BOOL: _C2.BOOL,
    TensorProto.FLOAT16: _C2.FLOAT16,
    TensorProto.DOUBLE: _C2.DOUBLE,
}
"""The ``to`` of ONNX ``Cast`` / ``dtype`` of ``ConstantOfShape`` in Caffe2's DataType numbering."""


def caffe2_dtype(onnx_dtype: int, where: str) -> int:
    if onnx_dtype not in ONNX_TO_CAFFE2_DTYPE:
        name = TensorProto.DataType.Name(onnx_dtype) if onnx_dtype in TensorProto.DataType.values() else onnx_dtype
        raise UnsupportedOnnxNodeError(
            f"{where}: element type {name} has no Caffe2 DataType; supported: "
            f"{[TensorProto.DataType.Name(t) for t in ONNX_TO_CAFFE2_DTYPE]}"
        )
    return ONNX_TO_CAFFE2_DTYPE[onnx_dtype]


def fill_op_type(dtype: np.dtype) -> str:
    """The ``GivenTensor*Fill`` op that recreates an array of ``dtype``."""
    dtype = np.dtype(dtype)
    if dtype == np.float32:
        return "GivenTensorFill"
    if dtype == np.float64:
        return "GivenTensorDoubleFill"
    if dtype == np.int64:
        return "GivenTensorInt64Fill"
    if dtype == np.bool_:
        return "GivenTensorBoolFill"
    if dtype.kind in "iu" and dtype.itemsize <= 4 and dtype != np.uint32:
        return "GivenTensorIntFill"
    if dtype.kind in "SUO":
        return "GivenTensorStringFill"
    raise UnsupportedOnnxNodeError(
        f"constant of dtype {dtype}: no Caffe2 fill op, expected float32/64, int8-32, uint8/16, int64, bool or strings"
    )


def make_fill_op(output: str, array: np.ndarray, name: str = "") -> caffe2_pb2.OperatorDef:
    """One fill op producing ``array`` (any shape, scalars included) into blob ``output``."""
    array = np.asarray(array)
    op_type = fill_op_type(array.dtype)
    if op_type == "GivenTensorStringFill":
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel().tolist()]
    elif op_type == "GivenTensorBoolFill":
        values = array.astype(np.int64).ravel()
    else:
        values = array.ravel()
    return make_operator_def(op_type, [], [output], name=name, values=values, shape=list(array.shape))
