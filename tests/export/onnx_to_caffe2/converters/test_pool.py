import numpy as np
import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)


@pytest.mark.parametrize("op_type", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        dict(kernel_shape=[1, 1], strides=[2, 2]),
        dict(kernel_shape=[2, 3]),
    ],
)
def test_pool_matches_reference(op_type, attrs):
    model = make_model(helper.make_node(op_type, ["x"], ["y"], **attrs), {"x": X}, ["y"])
    assert op_types(check_against_reference(model, {"x": X})) == [op_type]


def test_average_pool_counting_padding():
    node = helper.make_node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)
    check_against_reference(make_model(node, {"x": X}, ["y"]), {"x": X})


@pytest.mark.parametrize("op_type", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op_type):
    net = check_against_reference(make_model(helper.make_node(op_type, ["x"], ["y"]), {"x": X}, ["y"]), {"x": X})
    assert op_types(net) == [op_type.replace("Global", "")]
    assert net.op[0].arg[0].name == "global_pooling" and net.op[0].arg[0].i == 1


def test_ceil_mode_is_refused():
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1)
    with pytest.raises(UnsupportedOnnxNodeError, match="ceil_mode=1"):
        onnx_graph_to_caffe2_net(make_model(node, {"x": X}, ["y"]))
