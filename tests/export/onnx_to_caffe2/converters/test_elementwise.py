import numpy as np
import pytest
from onnx import helper

from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

RNG = np.random.default_rng(0)
A = RNG.standard_normal((2, 3, 4)).astype(np.float32)
POSITIVE = (np.abs(A) + 0.5).astype(np.float32)


@pytest.mark.parametrize(
    "op_type, caffe2_type, x",
    [
        ("Relu", "Relu", A),
        ("Sigmoid", "Sigmoid", A),
        ("Tanh", "Tanh", A),
        ("Exp", "Exp", A),
        ("Log", "Log", POSITIVE),
        ("Sqrt", "Sqrt", POSITIVE),
        ("Neg", "Negative", A),
        ("Abs", "Abs", A),
        ("Floor", "Floor", A),
        ("Ceil", "Ceil", A),
        ("Identity", "Copy", A),
        ("Reciprocal", "Pow", POSITIVE),
    ],
)
def test_unary(op_type, caffe2_type, x):
    model = make_model(helper.make_node(op_type, ["x"], ["y"]), {"x": x}, ["y"])
    assert op_types(check_against_reference(model, {"x": x})) == [caffe2_type]


@pytest.mark.parametrize("op_type", ["Add", "Sub", "Mul", "Div"])
@pytest.mark.parametrize("b_shape", [(2, 3, 4), (4,), (3, 1), (1,)])
def test_arithmetic_broadcasts_like_numpy(op_type, b_shape):
    b = (np.abs(RNG.standard_normal(b_shape)) + 0.5).astype(np.float32)
    model = make_model(helper.make_node(op_type, ["a", "b"], ["y"]), {"a": A, "b": b}, ["y"])
    net = check_against_reference(model, {"a": A, "b": b})
    assert op_types(net) == [op_type] and not net.op[0].arg


@pytest.mark.parametrize("op_type, caffe2_type", [("Equal", "EQ"), ("Less", "LT"), ("Greater", "GT")])
def test_comparisons(op_type, caffe2_type):
    a = RNG.integers(0, 3, (2, 5)).astype(np.int64)
    b = RNG.integers(0, 3, (5,)).astype(np.int64)
    model = make_model(helper.make_node(op_type, ["a", "b"], ["y"]), {"a": a, "b": b}, ["y"])
    assert op_types(check_against_reference(model, {"a": a, "b": b})) == [caffe2_type]


def test_sum_of_three():
    feeds = {n: RNG.standard_normal((3, 2)).astype(np.float32) for n in "abc"}
    model = make_model(helper.make_node("Sum", ["a", "b", "c"], ["y"]), feeds, ["y"])
    assert op_types(check_against_reference(model, feeds)) == ["Sum"]


def test_pow_with_constant_exponent_becomes_an_argument():
    model = make_model(helper.make_node("Pow", ["x", "e"], ["y"]), {"x": POSITIVE}, ["y"], {"e": np.float32(2.5)})
    net = check_against_reference(model, {"x": POSITIVE})
    assert list(net.op[0].input) == ["x"] and net.op[0].arg[0].f == 2.5


@pytest.mark.parametrize("bounds", [("lo", "hi"), ("lo", ""), ("",)])
def test_clip_opset11_bounds_from_inputs(bounds):
    inits = {"lo": np.float32(-0.5), "hi": np.float32(0.7)}
    node = helper.make_node("Clip", ["x", *bounds], ["y"])
    model = make_model(node, {"x": A}, ["y"], {k: v for k, v in inits.items() if k in bounds})
    net = check_against_reference(model, {"x": A})
    assert list(net.op[0].input) == ["x"]


def test_clip_opset6_bounds_from_attributes():
    model = make_model(helper.make_node("Clip", ["x"], ["y"], min=-0.2, max=0.3), {"x": A}, ["y"], opset=9)
    check_against_reference(model, {"x": A})


def test_dropout_is_identity_in_test_mode():
    model = make_model(helper.make_node("Dropout", ["x"], ["y"], ratio=0.3), {"x": A}, ["y"], opset=9)
    net = check_against_reference(model, {"x": A})
    assert op_types(net) == ["Dropout"] and net.op[0].arg[0].name == "is_test"
