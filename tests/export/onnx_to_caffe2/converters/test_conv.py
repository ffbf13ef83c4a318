import numpy as np
import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model

RNG = np.random.default_rng(0)


def _rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize(
    "attrs",
    [
        dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        dict(kernel_shape=[3, 1], pads=[0, 1, 2, 0], dilations=[2, 1]),
        dict(pads=[1, 1, 1, 1]),  # kernel taken from the weight's shape
    ],
)
def test_conv_matches_reference(attrs):
    x, w, b = (
        _rand(1, 3, 9, 8),
        _rand(4, 3, *([3, 3] if "kernel_shape" not in attrs else attrs["kernel_shape"])),
        _rand(4),
    )
    model = make_model(helper.make_node("Conv", ["x", "w", "b"], ["y"], **attrs), {"x": x}, ["y"], {"w": w, "b": b})
    net = check_against_reference(model, {"x": x}, atol=1e-5)
    assert [op.type for op in net.op] == ["Conv"]


def test_grouped_conv_without_bias():
    x, w = _rand(2, 4, 6, 6), _rand(6, 2, 3, 3)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], group=2)
    check_against_reference(make_model(node, {"x": x}, ["y"], {"w": w}), {"x": x}, atol=1e-5)


def test_conv_arguments_are_caffe2_names():
    w = _rand(4, 3, 3, 3)
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], pads=[1, 2, 1, 2])
    _, net = onnx_graph_to_caffe2_net(make_model(node, {"x": _rand(1, 3, 5, 5)}, ["y"], {"w": w}))
    args = {a.name: list(a.ints) or a.i for a in net.op[0].arg}
    assert args == {"kernels": [3, 3], "pads": [1, 2, 1, 2], "group": 1}


@pytest.mark.parametrize(
    "attrs", [dict(strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1]), dict(strides=[2, 1])]
)
def test_conv_transpose_matches_reference(attrs):
    x, w, b = _rand(1, 4, 5, 6), _rand(4, 3, 3, 3), _rand(3)
    node = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], **attrs)
    net = check_against_reference(make_model(node, {"x": x}, ["y"], {"w": w, "b": b}), {"x": x}, atol=1e-5)
    assert net.op[0].type == "ConvTranspose"
    assert ("adjs" in [a.name for a in net.op[0].arg]) == ("output_padding" in attrs)


def test_same_padding_is_refused():
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", name="conv1")
    model = make_model(node, {"x": _rand(1, 3, 5, 5)}, ["y"], {"w": _rand(4, 3, 3, 3)})
    with pytest.raises(UnsupportedOnnxNodeError, match=r"'conv1'.*auto_pad='SAME_UPPER'"):
        onnx_graph_to_caffe2_net(model)
