import logging

import numpy as np
import pytest

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import ExportError
from detectron2_export.export.passes import Int8Tensor, construct_init_net_from_params
from detectron2_export.export.protobuf_utils import make_operator_def

PARAMS = {
    "f32": np.arange(6, dtype=np.float32).reshape(2, 3) / 4,
    "i32": np.array([[1, -2]], np.int32),
    "i64": np.array([3, 2**40], np.int64),
    "f64": np.array([0.5, -2.25]),  # Caffe2 keeps double fills in the float32 ``floats`` field
    "flags": np.array([True, False, True]),
    "scalar": np.array(2.5, np.float32),
}
EXPECTED_OPS = [
    "GivenTensorFill",
    "GivenTensorIntFill",
    "GivenTensorInt64Fill",
    "GivenTensorDoubleFill",
    "GivenTensorBoolFill",
    "GivenTensorFill",
]


def _args(o):
    return {a.name: a for a in o.arg}


def test_dtype_to_fill_op_and_round_trip_through_the_runtime():
    init = construct_init_net_from_params(PARAMS)
    assert init.name == "" and list(init.external_output) == list(PARAMS)
    assert [o.type for o in init.op] == EXPECTED_OPS
    assert list(_args(init.op[0])["shape"].ints) == [2, 3]
    ws = Workspace("construct_init_net")
    ws.RunNetOnce(init)
    for name, value in PARAMS.items():
        got = ws.FetchBlob(name)
        assert got.dtype == value.dtype and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value)


def test_uint8_is_stored_as_one_string():
    (fill,) = construct_init_net_from_params({"bytes": np.array([[1, 2], [3, 255]], np.uint8)}).op
    assert fill.type == "GivenTensorStringFill"
    assert list(_args(fill)["values"].strings) == [b"\x01\x02\x03\xff"] and list(_args(fill)["shape"].ints) == [1]


@pytest.mark.parametrize("dtype, op_type", [(np.uint8, "Int8GivenTensorFill"), (np.int32, "Int8GivenIntTensorFill")])
def test_int8_tensors(dtype, op_type):
    (fill,) = construct_init_net_from_params({"q": Int8Tensor(np.array([1, 2], dtype), 0.5, 3)}).op
    args = _args(fill)
    assert fill.type == op_type and args["Y_scale"].f == 0.5 and args["Y_zero_point"].i == 3
    assert args["values"].s == b"\x01\x02" if dtype == np.uint8 else list(args["values"].ints) == [1, 2]


def test_device_options_are_copied_and_strings_skipped(caplog):
    cuda = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)
    params = {"w": PARAMS["f32"], "name": "a string", "b": PARAMS["i32"]}
    with caplog.at_level(logging.WARNING):
        init = construct_init_net_from_params(params, {"w": cuda, "b": caffe2_pb2.DeviceOption()})
    assert list(init.external_output) == ["w", "b"]
    assert init.op[0].device_option == cuda and not init.op[1].HasField("device_option")
    assert "Blob name with type" in caplog.text


def test_unsupported_dtype_is_an_error():
    with pytest.raises(ExportError, match="'half'.*float16"):
        construct_init_net_from_params({"half": np.zeros(2, np.float16)})


# SPEC 4.4.5's dtype -> fill op table, plus the double and bool fills of the ONNX converter
_FILL_OP_OF = {
    np.float32: "GivenTensorFill",
    np.int32: "GivenTensorIntFill",
    np.int64: "GivenTensorInt64Fill",
    np.float64: "GivenTensorDoubleFill",
    np.bool_: "GivenTensorBoolFill",
}


def _reference_fill_op(name, blob):
    """The fill op as built before fills were written in place: one ``make_operator_def`` call with
    upstream's ``create_const_fill_op`` arguments."""
    if isinstance(blob, Int8Tensor):
        data = blob.data
        uint8 = data.dtype == np.uint8
        return make_operator_def(
            "Int8GivenTensorFill" if uint8 else "Int8GivenIntTensorFill",
            [],
            [name],
            values=data.tobytes() if uint8 else data,
            shape=list(data.shape),
            Y_scale=blob.scale,
            Y_zero_point=blob.zero_point,
        )
    if blob.dtype == np.uint8:
        return make_operator_def("GivenTensorStringFill", [], [name], values=[blob.tobytes()], shape=[1])
    values = blob.astype(np.int64) if blob.dtype == np.bool_ else blob
    return make_operator_def(_FILL_OP_OF[blob.dtype.type], [], [name], values=values, shape=list(blob.shape))


def test_bytes_equal_the_make_operator_def_path():
    cuda = caffe2_pb2.DeviceOption(device_type=caffe2_pb2.PROTO_CUDA, device_id=0)
    params = {
        **PARAMS,
        "big": np.random.default_rng(0).standard_normal((256, 1024)).astype(np.float32),
        "bytes": np.array([[1, 2], [3, 255]], np.uint8),
        "q8": Int8Tensor(np.array([1, 2], np.uint8), 0.5, 3),
        "q32": Int8Tensor(np.array([4, -5], np.int32), 0.25, 0),
    }
    device_options = {"f32": cuda, "big": cuda}
    expected = caffe2_pb2.NetDef()
    for name, blob in params.items():
        fill = _reference_fill_op(name, blob)
        if name in device_options:
            fill.device_option.CopyFrom(device_options[name])
        expected.op.append(fill)
        expected.external_output.append(name)
    got = construct_init_net_from_params(params, device_options)
    assert got.SerializeToString() == expected.SerializeToString()
