"""Fill ops built in place (``set_fill_op``/``add_argument``) serialise exactly like the generic
``make_operator_def``/``make_argument`` path they replace, and run to the same blobs."""

import numpy as np
import pytest

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.caffe2.arguments import add_argument
from detectron2_export.export.onnx_to_caffe2.tensors import fill_op_type, make_fill_op, set_fill_op
from detectron2_export.export.protobuf_utils import make_operator_def

RNG = np.random.default_rng(0)
ARRAYS = {
    "f32": RNG.standard_normal((3, 5)).astype(np.float32),
    "f32_transposed": RNG.standard_normal((4, 6)).astype(np.float32).T,  # not C-contiguous
    "f32_scalar": np.array(1.5, np.float32),
    "f32_empty": np.zeros((0, 3), np.float32),
    "f64": np.array([0.5, -2.25, 1e-3]),
    "i64": np.array([[3, -1], [2**40, 0]], np.int64),
    "i32": np.array([7, -8], np.int32),
    "u8": np.array([0, 255], np.uint8),
    "bool": np.array([True, False, True]),
}


def _reference_fill_op(output: str, array: np.ndarray, name: str = "") -> caffe2_pb2.OperatorDef:
    """The fill op as the converter built it before: one ``make_operator_def`` call."""
    values = array.astype(np.int64).ravel() if array.dtype == np.bool_ else array.ravel()
    return make_operator_def(fill_op_type(array.dtype), [], [output], name=name, values=values, shape=list(array.shape))


@pytest.mark.parametrize("key", list(ARRAYS))
def test_fill_op_bytes_equal_the_generic_path(key):
    array = ARRAYS[key]
    expected = _reference_fill_op(key, array, name="n").SerializeToString()
    assert make_fill_op(key, array, name="n").SerializeToString() == expected
    net = caffe2_pb2.NetDef()
    set_fill_op(net.op.add(), key, array, name="n")
    assert net.op[0].SerializeToString() == expected


def test_fill_ops_built_in_a_net_run_to_the_arrays():
    net = caffe2_pb2.NetDef()
    for key, array in ARRAYS.items():
        set_fill_op(net.op.add(), key, array)
    ws = Workspace("test_tensors")
    ws.RunNetOnce(net)
    for key, array in ARRAYS.items():
        got = ws.FetchBlob(key)
        assert got.shape == array.shape, key
        # double fills go through the float32 ``floats`` field (Caffe2's convention)
        expected = array.astype(np.float32).astype(np.float64) if array.dtype == np.float64 else array
        np.testing.assert_array_equal(got, expected, err_msg=key)


@pytest.mark.parametrize(
    "value",
    [
        np.arange(7, dtype=np.float32) / 3,
        np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2],  # strided view
        np.zeros(0, np.float32),
        np.array([1, 2], np.int64),
        [1.0, 2.5],
        [3, 4],
        [],
        "text",
        2,
        0.25,
    ],
    ids=repr,
)
def test_add_argument_equals_make_argument(value):
    op = caffe2_pb2.OperatorDef()
    add_argument(op, "a", value)
    assert len(op.arg) == 1
    assert op.arg[0].SerializeToString() == make_argument("a", value).SerializeToString()


def test_large_float_argument_round_trips_bit_exactly():
    values = RNG.standard_normal(1 << 20).astype(np.float32)
    values[:4] = [np.nan, np.inf, -0.0, np.finfo(np.float32).tiny / 2]  # NaN, inf, -0, a subnormal
    op = caffe2_pb2.OperatorDef()
    add_argument(op, "values", values)
    got = np.asarray(op.arg[0].floats, dtype=np.float32)
    assert got.tobytes() == values.tobytes()
