import numpy as np
import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(np.float32)


@pytest.mark.parametrize(
    "axis, indices, expected",
    [
        (0, np.array([2, 0, 3], np.int64), "Gather"),
        (0, np.array(1, np.int64), "Gather"),
        (1, np.array([[2, 0], [1, 1]], np.int64), "BatchGather"),
        (-2, np.array([2], np.int64), "BatchGather"),
    ],
)
def test_gather_with_runtime_indices(axis, indices, expected):
    feeds = {"x": X, "i": indices}
    net = check_against_reference(
        make_model(helper.make_node("Gather", ["x", "i"], ["y"], axis=axis), feeds, ["y"]), feeds
    )
    assert op_types(net) == [expected]


def test_negative_constant_indices_are_wrapped_when_the_dim_is_static():
    model = make_model(
        helper.make_node("Gather", ["x", "i"], ["y"]), {"x": X}, ["y"], {"i": np.array([-1, 0], np.int64)}
    )
    net = check_against_reference(model, {"x": X})
    assert not any(a.name == "wrap_indices" for a in net.op[0].arg)


def test_gather_on_axis_2_is_refused():
    model = make_model(
        helper.make_node("Gather", ["x", "i"], ["y"], axis=2), {"x": X, "i": np.array([0], np.int64)}, ["y"]
    )
    with pytest.raises(UnsupportedOnnxNodeError, match="axis=2"):
        onnx_graph_to_caffe2_net(model)


def test_scalar_index_into_a_shape():
    # what PyTorch exports for x.size(0): Gather(Shape(x), 0) -> a 0-d dim
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["n"])]
    model = make_model(nodes, {"x": X}, ["n"], {"i": np.array(0, np.int64)})
    check_against_reference(model, {"x": X})


def test_negative_constant_indices_into_a_dynamic_dim_wrap_at_run_time():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Gather", ["r", "i"], ["y"])]
    model = make_model(nodes, {"x": X}, ["y"], {"i": np.array([-1, 1], np.int64)})
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "n"
    net = check_against_reference(model, {"x": X})
    assert [(a.name, a.i) for a in net.op[1].arg] == [("wrap_indices", 1)]
