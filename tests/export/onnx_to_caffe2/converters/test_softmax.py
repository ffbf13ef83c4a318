import numpy as np
import pytest
from onnx import helper

from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)


def _softmax_2d(x, axis, log):
    """Softmax-1/11 semantics, written out: rows of the input viewed as (prod(dims[:axis]), -1)."""
    axis = axis % x.ndim
    rows = x.reshape(int(np.prod(x.shape[:axis])), -1).astype(np.float64)
    e = np.exp(rows - rows.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    return (np.log(y) if log else y).reshape(x.shape).astype(np.float32)


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [1, 3, -1])
def test_before_opset13_flattens_at_axis(op_type, axis):
    # onnx.reference implements only the opset-13 rule, so the reference is written out here
    model = make_model(helper.make_node(op_type, ["x"], ["y"], axis=axis), {"x": X}, ["y"], opset=11)
    expected = [_softmax_2d(X, axis, log=op_type == "LogSoftmax")]
    net = check_against_reference(model, {"x": X}, expected=expected)
    assert op_types(net) == (["Softmax"] if op_type == "Softmax" else ["Softmax", "Log"])


@pytest.mark.parametrize("op_type", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [1, 3, -1, -3])
def test_from_opset13_normalizes_one_axis(op_type, axis):
    model = make_model(helper.make_node(op_type, ["x"], ["y"], axis=axis), {"x": X}, ["y"], opset=13)
    net = check_against_reference(model, {"x": X})
    moved = axis not in (3, -1)
    assert ("Transpose" in op_types(net)) == moved
