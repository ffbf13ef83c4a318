import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from detectron2_export.export.onnx_to_caffe2 import onnx_graph_to_caffe2_net
from tests.export.onnx_to_caffe2.helpers import check_against_reference, make_model, op_types

X = np.random.default_rng(0).standard_normal((2, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "value, fill",
    [
        (np.array([[1.5, -2.0, 3.0]], np.float32), "GivenTensorFill"),
        (np.array([1, -2, 3], np.int64), "GivenTensorInt64Fill"),
        (np.array([4, 5, 6], np.int32), "GivenTensorIntFill"),
        (np.array([0.25, 1e-10, 3.0], np.float64), "GivenTensorDoubleFill"),
        (np.array([True, False, True]), "GivenTensorBoolFill"),
        (np.array(7, np.int64), "GivenTensorInt64Fill"),
    ],
)
def test_constant_becomes_a_fill_op_in_the_predict_net(value, fill):
    node = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(value))
    model = make_model(node, {}, ["c"])
    init_net, predict_net = onnx_graph_to_caffe2_net(model)
    assert op_types(predict_net) == [fill] and not init_net.op
    check_against_reference(model, {})


@pytest.mark.parametrize("attr, value", [("value_float", 2.5), ("value_ints", [1, 2, 3])])
def test_constant_from_scalar_attributes(attr, value):
    check_against_reference(
        make_model(helper.make_node("Constant", [], ["c"], **{attr: value}), {}, ["c"], opset=13), {}
    )


def test_constant_used_as_operand():
    nodes = [helper.make_node("Constant", [], ["c"], value_float=2.0), helper.make_node("Mul", ["x", "c"], ["y"])]
    net = check_against_reference(make_model(nodes, {"x": X}, ["y"], opset=13), {"x": X})
    assert op_types(net) == ["GivenTensorFill", "Mul"]


def test_constant_of_shape_with_constant_shape_is_a_fill():
    value = numpy_helper.from_array(np.array([3], np.int64))
    node = helper.make_node("ConstantOfShape", ["s"], ["y"], value=value)
    net = check_against_reference(make_model(node, {}, ["y"], {"s": np.array([2, 2], np.int64)}), {})
    assert op_types(net) == ["GivenTensorInt64Fill"]


@pytest.mark.parametrize("value", [None, np.array([1.5], np.float32), np.array([7], np.int64)])
def test_constant_of_runtime_shape_is_constant_fill(value):
    attrs = {} if value is None else {"value": numpy_helper.from_array(value)}
    nodes = [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("ConstantOfShape", ["s"], ["y"], **attrs)]
    net = check_against_reference(make_model(nodes, {"x": X}, ["y"]), {"x": X})
    assert op_types(net) == ["Shape", "ConstantFill"]


@pytest.mark.parametrize(
    "to", [TensorProto.INT64, TensorProto.INT32, TensorProto.FLOAT, TensorProto.BOOL, TensorProto.DOUBLE]
)
def test_cast_maps_onnx_dtype_to_caffe2_enum(to):
    x = np.array([[0.0, 1.7, -2.2]], np.float32)
    net = check_against_reference(make_model(helper.make_node("Cast", ["x"], ["y"], to=to), {"x": x}, ["y"]), {"x": x})
    caffe2_enum = {
        TensorProto.INT64: 10,
        TensorProto.INT32: 2,
        TensorProto.FLOAT: 1,
        TensorProto.BOOL: 5,
        TensorProto.DOUBLE: 13,
    }
    assert net.op[0].arg[0].i == caffe2_enum[to]
