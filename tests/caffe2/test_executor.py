"""The executor's error contract: every failure names the op type, its index, inputs and outputs."""

import pytest
import torch

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.executor import Net
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace
from detectron2_export.errors import OperatorArgumentError, OperatorInputError, UnknownOperatorError
from tests.caffe2.helpers import make_op


def _net(*ops, inputs=("x",)):
    return caffe2_pb2.NetDef(name="n", op=list(ops), external_input=list(inputs))


def _ws(**blobs):
    ws = Workspace()
    for k, v in blobs.items():
        ws.FeedBlob(k, v)
    return ws


def test_ops_run_in_order_and_in_place_names():
    net = _net(make_op("Relu", ["x"], ["x"]), make_op("Scale", ["x"], ["y"], scale=2.0), make_op("Add", ["x", "y"], ["z"]))
    ws = _ws(x=torch.tensor([-1.0, 3.0]))
    ws.RunNetOnce(net)
    assert ws.FetchBlob("z").tolist() == [0.0, 9.0]  # relu(x) + 2 relu(x)


def test_unknown_op():
    net = _net(make_op("Relu", ["x"], ["a"]), make_op("NoSuchOp", ["a"], ["b"]))
    with pytest.raises(UnknownOperatorError, match=r"net 'n' op #1 'NoSuchOp' \(inputs \['a'\], outputs \['b'\]\): Caffe2 op type 'NoSuchOp' is not implemented"):
        _ws(x=torch.zeros(1)).RunNetOnce(net)


def test_bad_argument_and_unknown_argument():
    with pytest.raises(OperatorArgumentError, match=r"op #0 'Softmax' .*Softmax: axis=1.5, expected int"):
        _ws(x=torch.zeros(1)).RunNetOnce(_net(make_op("Softmax", ["x"], ["y"], axis=1.5)))
    with pytest.raises(OperatorArgumentError, match=r"op #0 'Relu' .*unknown argument\(s\) \['alpha'\]"):
        _ws(x=torch.zeros(1)).RunNetOnce(_net(make_op("Relu", ["x"], ["y"], alpha=0.1)))


def test_input_and_output_counts():
    with pytest.raises(OperatorInputError, match=r"op #0 'Relu' .*Relu: 2 inputs, expected 1"):
        _ws(x=torch.zeros(1)).RunNetOnce(_net(make_op("Relu", ["x", "x"], ["y"])))
    with pytest.raises(OperatorInputError, match=r"Conv: 1 inputs, expected 2 to 3"):
        _ws(x=torch.zeros(1)).RunNetOnce(_net(make_op("Conv", ["x"], ["y"])))
    with pytest.raises(OperatorInputError, match=r"Sum: 0 inputs, expected at least 1"):
        _ws().RunNetOnce(_net(make_op("Sum", [], ["y"]), inputs=()))


def test_missing_blob_at_run_time_names_blob_and_op():
    ws = _ws(x=torch.zeros(1))
    ws.CreateNet(_net(make_op("Relu", ["x"], ["y"])))
    ws.RemoveBlob("x")
    with pytest.raises(OperatorInputError, match=r"op #0 'Relu' \(inputs \['x'\], outputs \['y'\]\): input blob 'x' does not exist"):
        ws.RunNet("n")


def test_torch_errors_are_wrapped_with_context():
    net = _net(make_op("Add", ["x", "x2"], ["y"]), inputs=("x", "x2"))
    with pytest.raises(OperatorInputError, match=r"op #0 'Add' .*RuntimeError: The size of tensor a \(2\) must match") as info:
        _ws(x=torch.zeros(2), x2=torch.zeros(3)).RunNetOnce(net)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_non_tensor_blob_input():
    ws = _ws(x="not a tensor")
    with pytest.raises(OperatorInputError, match=r"op #0 'Softmax' .*Softmax: X is a str, expected a tensor"):
        ws.RunNetOnce(_net(make_op("Softmax", ["x"], ["y"])))


def test_binding_happens_once_at_create():
    net_def = _net(make_op("Scale", ["x"], ["y"], scale=3.0))
    net = Net(net_def, {"x"})
    assert net.ops[0].kwargs == {"scale": 3.0}
    blobs = {"x": torch.tensor([2.0])}
    net.run(blobs)
    assert blobs["y"].tolist() == [6.0]
    net_def.op[0].arg[0].CopyFrom(make_argument("scale", 10.0))  # editing the proto later has no effect
    net.run(blobs)
    assert blobs["y"].tolist() == [6.0]
