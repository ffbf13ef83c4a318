import numpy as np
import pytest
from onnx import helper

from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3, 1, 4)).astype(np.float32)
I64 = np.int64


@pytest.mark.parametrize("axis", [0, 1, 3, -1])
def test_flatten(axis):
    model = make_model(helper.make_node("Flatten", ["x"], ["y"], axis=axis), {"x": X}, ["y"])
    assert op_types(check_against_reference(model, {"x": X})) == ["Flatten"]


@pytest.mark.parametrize("shape", [[2, -1], [0, 0, -1], [-1, 4], [0, 12]])
def test_reshape_keeps_the_shape_input_and_adds_old_shape_output(shape):
    model = make_model(helper.make_node("Reshape", ["x", "s"], ["y"]), {"x": X}, ["y"], {"s": np.array(shape, I64)})
    net = check_against_reference(model, {"x": X})
    assert op_types(net) == ["Reshape"] and list(net.op[0].input) == ["x", "s"] and len(net.op[0].output) == 2


@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 1, 0, 2]])
def test_transpose(perm):
    node = helper.make_node("Transpose", ["x"], ["y"], **({} if perm is None else {"perm": perm}))
    check_against_reference(make_model(node, {"x": X}, ["y"]), {"x": X})


@pytest.mark.parametrize("axes", [[2], [-2], None])
def test_squeeze_opset11(axes):
    node = helper.make_node("Squeeze", ["x"], ["y"], **({} if axes is None else {"axes": axes}))
    net = check_against_reference(make_model(node, {"x": X}, ["y"]), {"x": X})
    assert op_types(net) == ["Squeeze"] and list(net.op[0].arg[0].ints) == [2]


def test_squeeze_opset13_axes_from_input():
    model = make_model(
        helper.make_node("Squeeze", ["x", "a"], ["y"]), {"x": X}, ["y"], {"a": np.array([2], I64)}, opset=13
    )
    check_against_reference(model, {"x": X})


@pytest.mark.parametrize("axes, dims", [([0], [0]), ([1, -1], [1, 5]), ([-1, 0], [0, 5])])
def test_unsqueeze_opset11(axes, dims):
    net = check_against_reference(
        make_model(helper.make_node("Unsqueeze", ["x"], ["y"], axes=axes), {"x": X}, ["y"]), {"x": X}
    )
    assert op_types(net) == ["ExpandDims"] and list(net.op[0].arg[0].ints) == dims


def test_unsqueeze_opset13_axes_from_input():
    model = make_model(
        helper.make_node("Unsqueeze", ["x", "a"], ["y"]), {"x": X}, ["y"], {"a": np.array([1, 3], I64)}, opset=13
    )
    check_against_reference(model, {"x": X})


@pytest.mark.parametrize("axis", [1, -1])
def test_concat_adds_split_info_output(axis):
    feeds = {"a": X, "b": X * 2}
    net = check_against_reference(
        make_model(helper.make_node("Concat", ["a", "b"], ["y"], axis=axis), feeds, ["y"]), feeds
    )
    assert op_types(net) == ["Concat"] and len(net.op[0].output) == 2


@pytest.mark.parametrize("split", [None, [1, 3]])
def test_split_opset11(split):
    node = helper.make_node("Split", ["x"], ["y0", "y1"], axis=3, **({} if split is None else {"split": split}))
    check_against_reference(make_model(node, {"x": X}, ["y0", "y1"]), {"x": X})


def test_split_opset13_sizes_from_input():
    node = helper.make_node("Split", ["x", "s"], ["y0", "y1"], axis=1)
    model = make_model(node, {"x": X}, ["y0", "y1"], {"s": np.array([2, 1], I64)}, opset=13)
    net = check_against_reference(model, {"x": X})
    assert list(net.op[0].input) == ["x"]


def test_expand_and_tile():
    nodes = [helper.make_node("Expand", ["x", "s"], ["e"]), helper.make_node("Tile", ["e", "r"], ["y"])]
    inits = {"s": np.array([3, 2, 3, 1, 4], I64), "r": np.array([1, 1, 2, 1, 3], I64)}
    net = check_against_reference(make_model(nodes, {"x": X}, ["y"], inits), {"x": X})
    assert op_types(net) == ["Expand", "NumpyTile"]


def test_shape_and_shape_slice_opset15():
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Shape", ["x"], ["t"], start=1, end=-1)]
    net = check_against_reference(make_model(nodes, {"x": X}, ["s", "t"], opset=15), {"x": X})
    assert [a.name for a in net.op[1].arg] == ["axes"] and list(net.op[1].arg[0].ints) == [1, 2]


def test_negative_axis_with_unknown_rank_is_refused():
    nodes = [
        helper.make_node("Relu", ["x"], ["r"]),
        helper.make_node("Unsqueeze", ["r"], ["y"], axes=[-1], name="unsq"),
    ]
    model = make_model(nodes, {"x": X}, ["y"])
    del model.graph.input[0].type.tensor_type.shape.dim[:]  # rank unknown
    model.graph.input[0].type.tensor_type.ClearField("shape")
    with pytest.raises(NotImplementedError, match=r"'unsq'.*negative axis -1"):
        onnx_graph_to_caffe2_net(model)
