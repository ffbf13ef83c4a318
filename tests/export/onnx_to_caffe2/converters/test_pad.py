import numpy as np
import pytest
from onnx import helper

from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((1, 2, 4, 5)).astype(np.float32)
PADS = np.array([0, 0, 1, 2, 0, 0, 3, 1], np.int64)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_opset11_is_pad_image(mode):
    node = helper.make_node("Pad", ["x", "p", "v"], ["y"], mode=mode)
    model = make_model(node, {"x": X}, ["y"], {"p": PADS, "v": np.array(1.5, np.float32)})
    net = check_against_reference(model, {"x": X})
    assert op_types(net) == ["PadImage"]
    assert list(next(a for a in net.op[0].arg if a.name == "pads").ints) == [1, 2, 3, 1]


def test_pad_opset2_attributes():
    node = helper.make_node("Pad", ["x"], ["y"], pads=PADS.tolist(), value=-1.0)
    check_against_reference(make_model(node, {"x": X}, ["y"], opset=9), {"x": X})


def test_channel_padding_is_refused():
    node = helper.make_node("Pad", ["x", "p"], ["y"])
    model = make_model(node, {"x": X}, ["y"], {"p": np.array([0, 1, 0, 0, 0, 0, 0, 0], np.int64)})
    with pytest.raises(UnsupportedOnnxNodeError, match="padding only H and W"):
        onnx_graph_to_caffe2_net(model)
