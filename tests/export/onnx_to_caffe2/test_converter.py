import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.errors import UnsupportedOnnxNodeError
from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import make_model, op_types, run_caffe2

RNG = np.random.default_rng(0)
X = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
W = RNG.standard_normal((2, 3, 1, 1)).astype(np.float32)


def _conv_slice_model():
    """Conv (weight param) -> Slice (bounds from initializers and a Constant) -> Add (Constant operand)."""
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[1, 1]),
        helper.make_node("Constant", [], ["ends"], value=numpy_helper.from_array(np.array([3], np.int64))),
        helper.make_node("Slice", ["c", "starts", "ends", "axes"], ["s"]),
        helper.make_node("Constant", [], ["one"], value_float=1.0),
        helper.make_node("Add", ["s", "one"], ["y"]),
    ]
    inits = {"w": W, "starts": np.array([1], np.int64), "axes": np.array([2], np.int64)}
    return make_model(nodes, {"x": X}, ["y"], inits)


def test_net_names_lists_and_device():
    init_net, predict_net = onnx_graph_to_caffe2_net(_conv_slice_model())
    assert init_net.name == "test_graph_init" and predict_net.name == "test_graph_predict"
    assert list(predict_net.external_input) == ["x", "w"]
    assert list(predict_net.external_output) == ["y"]
    assert predict_net.HasField("device_option") and predict_net.device_option.device_type == caffe2_pb2.PROTO_CPU
    assert op_types(init_net) == ["GivenTensorFill"] and list(init_net.external_output) == ["w"]


def test_constants_folded_into_arguments_are_dropped():
    init_net, predict_net = onnx_graph_to_caffe2_net(_conv_slice_model())
    # the slice bounds live in the Slice arguments; the Add operand stays a fill in the predict net
    assert op_types(predict_net) == ["Conv", "Slice", "GivenTensorFill", "Add"]
    assert predict_net.op[2].output[0] == "one"
    (y,) = run_caffe2(init_net, predict_net, {"x": X})
    expected = np.einsum("oi,nihw->nohw", W[:, :, 0, 0], X)[:, :, 1:3] + 1
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_initializers_listed_as_graph_inputs_come_after_data_inputs():
    model = _conv_slice_model()
    model.graph.input.insert(0, helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, W.shape))
    _, predict_net = onnx_graph_to_caffe2_net(model)
    assert list(predict_net.external_input) == ["x", "w"]


def test_node_names_are_copied():
    node = helper.make_node("Relu", ["x"], ["y"], name="/backbone/relu")
    _, predict_net = onnx_graph_to_caffe2_net(make_model(node, {"x": X}, ["y"]))
    assert predict_net.op[0].name == "/backbone/relu"


def test_unsupported_op_error_names_the_node_and_lists_supported_ops():
    node = helper.make_node("Hardmax", ["x"], ["y"], name="hm")
    with pytest.raises(UnsupportedOnnxNodeError) as info:
        onnx_graph_to_caffe2_net(make_model(node, {"x": X}, ["y"], opset=11))
    message = str(info.value)
    for part in ("'hm'", "op_type='Hardmax'", "domain=''", "opset 11", "supported ops:", "Conv", "Softmax"):
        assert part in message
    assert isinstance(info.value, NotImplementedError)
