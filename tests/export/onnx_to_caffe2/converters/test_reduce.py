import numpy as np
import pytest
from onnx import helper

from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)


@pytest.mark.parametrize("op_type", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("axes, keepdims", [([2], 1), ([1, 2], 0), ([-1], 0), (None, 1)])
def test_reduce_opset11(op_type, axes, keepdims):
    node = helper.make_node(op_type, ["x"], ["y"], keepdims=keepdims, **({} if axes is None else {"axes": axes}))
    net = check_against_reference(make_model(node, {"x": X}, ["y"]), {"x": X})
    assert op_types(net) == [op_type]


def test_reduce_sum_opset13_axes_from_input():
    node = helper.make_node("ReduceSum", ["x", "a"], ["y"], keepdims=0)
    model = make_model(node, {"x": X}, ["y"], {"a": np.array([0, 2], np.int64)}, opset=13)
    net = check_against_reference(model, {"x": X})
    assert list(net.op[0].input) == ["x"]
