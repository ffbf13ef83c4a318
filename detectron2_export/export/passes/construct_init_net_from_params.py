"""Build a fresh init net from parameters: one fill op per parameter (SPEC 4.4.5, 5.13)."""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import numpy as np

from ...caffe2.arguments import add_argument
from ...caffe2.proto import caffe2_pb2
from ...errors import ExportError

logger = logging.getLogger(__name__)

_FILL_OPS = {
    np.dtype(np.float32): "GivenTensorFill",
    np.dtype(np.int32): "GivenTensorIntFill",
    np.dtype(np.int64): "GivenTensorInt64Fill",
    np.dtype(np.uint8): "GivenTensorStringFill",
    # not in upstream's table; the ONNX converter emits these dtypes for graph constants
    np.dtype(np.float64): "GivenTensorDoubleFill",
    np.dtype(np.bool_): "GivenTensorBoolFill",
}
_INT8_FILL_OPS = {np.dtype(np.uint8): "Int8GivenTensorFill", np.dtype(np.int32): "Int8GivenIntTensorFill"}


class Int8Tensor(NamedTuple):
    """A quantized Caffe2 blob as ``caffe2.python.workspace.Int8Tensor`` fetches it."""

    data: np.ndarray
    scale: float
    zero_point: int


def _set_const_fill_op(op: caffe2_pb2.OperatorDef, name: str, blob: np.ndarray) -> None:
    dtype = np.asarray(blob).dtype
    if dtype not in _FILL_OPS:
        raise ExportError(
            f"create_const_fill_op: blob {name!r} dtype={dtype}, expected one of {sorted(map(str, _FILL_OPS))}"
        )
    if dtype == np.uint8:
        values, shape = [np.asarray(blob).tobytes()], [1]
    elif dtype == np.bool_:
        values, shape = np.asarray(blob).astype(np.int64), list(np.shape(blob))
    else:
        values, shape = np.asarray(blob), list(np.shape(blob))
    op.type = _FILL_OPS[dtype]
    op.output.append(name)
    add_argument(op, "values", values)
    add_argument(op, "shape", shape)


def _set_const_fill_op_from_int8_tensor(op: caffe2_pb2.OperatorDef, name: str, tensor: Int8Tensor) -> None:
    data = np.asarray(tensor.data)
    if data.dtype not in _INT8_FILL_OPS:
        raise ExportError(f"create_const_fill_op: Int8 blob {name!r} dtype={data.dtype}, expected uint8 or int32")
    op.type = _INT8_FILL_OPS[data.dtype]
    op.output.append(name)
    add_argument(op, "values", data.tobytes() if data.dtype == np.uint8 else data)
    add_argument(op, "shape", list(data.shape))
    add_argument(op, "Y_scale", float(tensor.scale))
    add_argument(op, "Y_zero_point", int(tensor.zero_point))


def create_const_fill_op(name: str, blob: np.ndarray) -> caffe2_pb2.OperatorDef:
    """The fill op recreating ``blob``; uint8 arrays are stored as one string (their bytes), shape [1]."""
    op = caffe2_pb2.OperatorDef()
    _set_const_fill_op(op, name, blob)
    return op


def construct_init_net_from_params(
    params: dict[str, Any], device_options: dict[str, caffe2_pb2.DeviceOption] | None = None
) -> caffe2_pb2.NetDef:
    """An unnamed init net with one fill op per parameter, in order, each listed in
    ``external_output``; string blobs are skipped with a warning.

    Each op is built in place in the net, so every parameter is serialised once (see
    ``add_argument``).
    """
    device_options = device_options or {}
    init_net = caffe2_pb2.NetDef()
    for name, blob in params.items():
        if isinstance(blob, (str, bytes)):
            logger.warning("Blob %s with type %s is not supported in generating init net, skipped.", name, type(blob))
            continue
        op = init_net.op.add()
        if isinstance(blob, Int8Tensor):
            _set_const_fill_op_from_int8_tensor(op, name, blob)
        else:
            _set_const_fill_op(op, name, blob)
        device_option = device_options.get(name)
        if device_option is not None and device_option.ListFields():
            op.device_option.CopyFrom(device_option)
        init_net.external_output.append(name)
    return init_net
