import numpy as np
import pytest
import torch

from detectron2_export.caffe2.arguments import (
    add_argument,
    decode_argument,
    decode_arguments,
    get_arg,
    make_argument,
)
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.errors import OperatorArgumentError


def _set_field(arg: caffe2_pb2.Argument) -> list[str]:
    return [f.name for f, _ in arg.ListFields() if f.name != "name"]


@pytest.mark.parametrize(
    "value, field, stored",
    [
        (3, "i", 3),
        (True, "i", 1),
        (2.5, "f", 2.5),
        ("abc", "s", b"abc"),
        (b"\xff\x00", "s", b"\xff\x00"),
        ([1.0, 2.0], "floats", [1.0, 2.0]),
        ([1, 2, 3], "ints", [1, 2, 3]),
        ([True, False], "ints", [1, 0]),
        (["a", b"b"], "strings", [b"a", b"b"]),
        (np.array([[1.5, 2.5]], dtype=np.float32), "floats", [1.5, 2.5]),
        (np.array([4, 5], dtype=np.int64), "ints", [4, 5]),
        (np.int64(7), "i", 7),
        ((2, 3), "ints", [2, 3]),
    ],
)
def test_make_argument_field_per_python_type(value, field, stored):
    arg = make_argument("x", value)
    assert arg.name == "x"
    assert _set_field(arg) == [field]
    got = getattr(arg, field)
    assert (list(got) if field in ("floats", "ints", "strings") else got) == stored


def test_make_argument_messages_and_tensors():
    net = caffe2_pb2.NetDef(name="sub")
    assert make_argument("n", net).n == net
    assert list(make_argument("nets", [net, net]).nets) == [net, net]
    arg = make_argument("t", torch.tensor([[1, 2]], dtype=torch.int32))
    assert list(arg.t.dims) == [1, 2] and list(arg.t.int32_data) == [1, 2]
    op = caffe2_pb2.OperatorDef(type="Relu")
    assert make_argument("op", op).s == op.SerializeToString()


def test_make_argument_rejects_mixed_lists():
    with pytest.raises(ValueError, match=r"make_argument: x=\[1, 2.0\]"):
        make_argument("x", [1, 2.0])


def test_add_argument_builds_in_place_and_leaves_the_op_unchanged_on_error():
    op = caffe2_pb2.OperatorDef(type="GivenTensorFill")
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    add_argument(op, "values", values)
    assert list(op.arg) == [make_argument("values", values)]
    with pytest.raises(ValueError, match=r"make_argument: x=\[1, 2.0\]"):
        add_argument(op, "x", [1, 2.0])
    assert list(op.arg) == [make_argument("values", values)]


@pytest.mark.parametrize(
    "value, decoded",
    [(3, 3), (2.5, 2.5), ("héllo", "héllo"), (b"\xff", b"\xff"), ([1, 2], [1, 2]), ([0.5], [0.5]), (["a", b"\xfe"], ["a", b"\xfe"])],
)
def test_decode_round_trip(value, decoded):
    assert decode_argument(make_argument("x", value)) == decoded


def test_decode_tensor_and_empty():
    t = decode_argument(make_argument("t", torch.tensor([1.5, -2.0])))
    torch.testing.assert_close(t, torch.tensor([1.5, -2.0]))
    assert decode_argument(caffe2_pb2.Argument(name="empty")) == []


def test_decode_rejects_two_value_fields():
    arg = caffe2_pb2.Argument(name="x", i=1, f=2.0)
    with pytest.raises(OperatorArgumentError, match=r"Conv: argument 'x' sets fields \['f', 'i'\], expected exactly one"):
        decode_argument(arg, "Conv")


def test_decode_arguments_rejects_duplicates():
    with pytest.raises(OperatorArgumentError, match=r"Relu: argument 'a' given twice"):
        decode_arguments([make_argument("a", 1), make_argument("a", 2)], "Relu")


def test_get_arg():
    net = caffe2_pb2.NetDef(arg=[make_argument("size_divisibility", 32), make_argument("device", "cpu")])
    assert get_arg(net, "size_divisibility") == 32
    assert get_arg(net, "device") == "cpu"
    assert get_arg(net, "missing", 0) == 0
    with pytest.raises(KeyError, match="missing"):
        get_arg(net, "missing")
