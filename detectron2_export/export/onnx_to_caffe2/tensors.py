"""Element types and constant tensors: ONNX dtype -> Caffe2 DataType, numpy array -> fill op (SPEC 5.13)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from ...caffe2.arguments import add_argument
from ...caffe2.proto import caffe2_pb2
from ...errors import UnsupportedOnnxNodeError

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


def set_fill_op(op: caffe2_pb2.OperatorDef, output: str, array: np.ndarray, name: str = "") -> None:
    """Make the empty ``op`` (e.g. ``net.op.add()``) the fill op producing ``array`` into blob ``output``.

    Building it in place inside its net avoids copying large values (see ``caffe2.arguments.add_argument``).
    """
    array = np.asarray(array)
    op.type = fill_op_type(array.dtype)
    if name:
        op.name = name
    op.output.append(output)
    if op.type == "GivenTensorStringFill":
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in array.ravel().tolist()]
    elif op.type == "GivenTensorBoolFill":
        values = array.astype(np.int64).ravel()
    else:
        values = array.ravel()
    add_argument(op, "values", values)
    add_argument(op, "shape", list(array.shape))


def make_fill_op(output: str, array: np.ndarray, name: str = "") -> caffe2_pb2.OperatorDef:
    """One fill op producing ``array`` (any shape, scalars included) into blob ``output``."""
    op = caffe2_pb2.OperatorDef()
    set_fill_op(op, output, array, name)
    return op
