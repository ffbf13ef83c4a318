import logging

import pytest

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.errors import ExportError
from detectron2_export.export.protobuf_utils import (
    check_set_pb_arg,
    get_pb_arg,
    get_pb_arg_floats,
    get_pb_arg_ints,
    get_pb_arg_valf,
    get_pb_arg_vali,
    get_pb_arg_vals,
    get_pb_arg_valstrings,
    make_operator_def,
    to_float32,
)


def _op():
    return make_operator_def(
        "Foo",
        ["a"],
        ["b"],
        name="foo",
        f=0.5,
        i=3,
        s="text",
        floats=[1.0, 2.5],
        ints=[4, 5],
        strings=["x", "y"],
        skip=None,
    )


def test_make_operator_def_sets_fields_and_args_in_order():
    op = _op()
    assert (op.type, list(op.input), list(op.output), op.name) == ("Foo", ["a"], ["b"], "foo")
    assert [a.name for a in op.arg] == ["f", "i", "s", "floats", "ints", "strings"]  # None is skipped
    assert not make_operator_def("Relu", ["x"], ["y"]).HasField("name")


def test_getters_read_their_field_or_default():
    op = _op()
    assert get_pb_arg(op, "missing") is None
    assert get_pb_arg_valf(op, "f", None) == 0.5 and get_pb_arg_valf(op, "missing", 7.0) == 7.0
    assert get_pb_arg_vali(op, "i", None) == 3 and get_pb_arg_vali(op, "missing", -1) == -1
    assert get_pb_arg_vals(op, "s", None) == b"text" and get_pb_arg_vals(op, "missing", None) is None
    assert get_pb_arg_floats(op, "floats", None) == [1.0, 2.5]
    assert get_pb_arg_ints(op, "ints", None) == [4, 5] and get_pb_arg_ints(op, "missing", []) == []
    assert get_pb_arg_valstrings(op, "strings", None) == [b"x", b"y"]


def test_check_set_adds_missing_arguments():
    net = caffe2_pb2.NetDef()
    check_set_pb_arg(net, "size_divisibility", "i", 32)
    check_set_pb_arg(net, "device", "s", "cpu")
    check_set_pb_arg(net, "bbox_reg_weights", "floats", [1.0, 1.0, 0.1])
    assert get_pb_arg_vali(net, "size_divisibility", None) == 32
    assert get_pb_arg_vals(net, "device", None) == b"cpu"
    assert get_pb_arg_floats(net, "bbox_reg_weights", None) == [1.0, 1.0, to_float32(0.1)]


def test_check_set_accepts_an_equal_value_after_float32_rounding():
    net = caffe2_pb2.NetDef()
    check_set_pb_arg(net, "score_threshold", "f", 0.05)
    check_set_pb_arg(net, "score_threshold", "f", 0.05)  # 0.05 is not a float32: equal only once rounded
    check_set_pb_arg(net, "bbox_reg_weights", "floats", [0.1, 0.2])
    check_set_pb_arg(net, "bbox_reg_weights", "floats", (0.1, 0.2))
    assert len(net.arg) == 2 and net.arg[0].f == to_float32(0.05) != 0.05


def test_check_set_rejects_a_different_value_unless_overriding(caplog):
    net = caffe2_pb2.NetDef()
    check_set_pb_arg(net, "topk_candidates", "i", 1000)
    with pytest.raises(ExportError, match="topk_candidates=1000 is already set, cannot set it to 500"):
        check_set_pb_arg(net, "topk_candidates", "i", 500)
    with caplog.at_level(logging.WARNING):
        check_set_pb_arg(net, "topk_candidates", "i", 500, allow_override=True)
    assert get_pb_arg_vali(net, "topk_candidates", None) == 500 and "Override argument topk_candidates" in caplog.text


def test_to_float32():
    assert to_float32(0.1) == 0.10000000149011612 and to_float32(0.5) == 0.5
