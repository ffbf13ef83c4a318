import numpy as np
import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
END = np.iinfo(np.int64).max


def _slice_model(starts, ends, axes=None, steps=None, static_shape=True):
    inits = {"s": np.array(starts, np.int64), "e": np.array(ends, np.int64)}
    names = ["x", "s", "e"]
    if axes is not None:
        inits["a"] = np.array(axes, np.int64)
        names.append("a")
    if steps is not None:
        inits["t"] = np.array(steps, np.int64)
        names.append("t")
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Slice", ["r", *names[1:]], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], inits)
    if not static_shape:  # only the rank is known
        for dim in model.graph.input[0].type.tensor_type.shape.dim:
            dim.dim_param = "d"
    return model


CASES = [
    ([1], [3], [1], None),
    ([0], [END], [2], None),
    ([-2], [END], [0], None),
    ([1], [-1], [-1], None),
    ([1, 2], [3, -2], [0, 2], [1, 1]),
]
STATIC_ONLY_CASES = [
    ([0, 1], [100, 3], [1, 2], None),  # an end past the dim is clamped
    ([2], [1], [1], None),  # end before start: empty
]


@pytest.mark.parametrize("starts, ends, axes, steps", CASES)
@pytest.mark.parametrize("static_shape", [True, False])
def test_slice_matches_reference(starts, ends, axes, steps, static_shape):
    net = check_against_reference(_slice_model(starts, ends, axes, steps, static_shape), {"x": X})
    assert set(op_types(net)[1:]) <= {"Slice", "Copy"}


@pytest.mark.parametrize("starts, ends, axes, steps", STATIC_ONLY_CASES)
def test_slice_bounds_clamped_to_static_dims(starts, ends, axes, steps):
    check_against_reference(_slice_model(starts, ends, axes, steps), {"x": X})


def test_one_caffe2_slice_per_cut_axis():
    _, net = onnx_graph_to_caffe2_net(_slice_model([1, 0, 2], [3, END, 4], [0, 1, 2]))
    assert op_types(net) == ["Relu", "Slice", "Slice"]
    _, net = onnx_graph_to_caffe2_net(_slice_model([0], [END], [1]))
    assert op_types(net) == ["Relu", "Copy"]


def test_slice_without_axes_covers_leading_dims():
    check_against_reference(_slice_model([1, 0], [3, 2]), {"x": X})


def test_slice_opset9_attributes():
    node = helper.make_node("Slice", ["x"], ["y"], starts=[1, -3], ends=[2, END], axes=[0, 2])
    check_against_reference(make_model(node, {"x": X}, ["y"], opset=9), {"x": X})


def test_unknown_dim_uses_caffe2_negative_convention():
    _, net = onnx_graph_to_caffe2_net(_slice_model([-2], [-1], [0], static_shape=False))
    slice_op = net.op[1]
    assert {a.name: list(a.ints) for a in slice_op.arg} == {"starts": [-3, 0, 0], "ends": [-2, -1, -1]}


def test_step_other_than_one_is_refused():
    with pytest.raises(UnsupportedOnnxNodeError, match=r"steps=\[2\]"):
        onnx_graph_to_caffe2_net(_slice_model([0], [4], [0], [2]))


def test_runtime_bounds_are_refused():
    nodes = [helper.make_node("Slice", ["x", "s", "e"], ["y"], name="dyn")]
    model = make_model(nodes, {"x": X, "s": np.array([0], np.int64), "e": np.array([2], np.int64)}, ["y"])
    with pytest.raises(UnsupportedOnnxNodeError, match=r"'dyn'.*starts.*computed at run time"):
        onnx_graph_to_caffe2_net(model)
