import numpy as np
import pytest
from onnx import helper

from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "attrs, c_shape, expected",
    [
        (dict(transB=1), (5,), ["FC"]),
        (dict(), (5,), ["FCTransposed"]),
        (dict(transB=1, alpha=0.5, beta=2.0), (5,), ["Scale", "Scale", "FC"]),
        (dict(transB=1), (2, 5), ["MatMul", "Add"]),
        (dict(transA=1, transB=1), (5,), ["MatMul", "Add"]),
        (dict(transB=1), None, ["MatMul"]),
    ],
)
def test_gemm(attrs, c_shape, expected):
    a = _rand(3, 2) if attrs.get("transA") else _rand(2, 3)
    b = _rand(5, 3) if attrs.get("transB") else _rand(3, 5)
    inits = {"b": b} if c_shape is None else {"b": b, "c": _rand(*c_shape)}
    node = helper.make_node("Gemm", ["a", "b"] + ([] if c_shape is None else ["c"]), ["y"], **attrs)
    net = check_against_reference(make_model(node, {"a": a}, ["y"], inits), {"a": a})
    assert op_types(net) == expected


@pytest.mark.parametrize("shapes", [((2, 3), (3, 4)), ((5, 2, 3), (3, 4)), ((2, 1, 2, 3), (3, 3, 4)), ((3,), (3, 4))])
def test_matmul_broadcasts(shapes):
    a, b = _rand(*shapes[0]), _rand(*shapes[1])
    model = make_model(helper.make_node("MatMul", ["a", "b"], ["y"]), {"a": a, "b": b}, ["y"])
    assert op_types(check_against_reference(model, {"a": a, "b": b}, atol=1e-5)) == ["BatchMatMul"]
