import numpy as np
import pytest
import torch

from detectron2_export.caffe2 import workspace
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import ScopedWS, Workspace
from detectron2_export.errors import OperatorInputError
from tests.caffe2.helpers import make_op


def _relu_net(name="relu_net"):
    return caffe2_pb2.NetDef(name=name, op=[make_op("Relu", ["x"], ["y"])], external_input=["x"], external_output=["y"])


def test_feed_fetch_numpy_and_torch():
    ws = Workspace("t")
    src = np.array([[1.0, -2.0]], dtype=np.float32)
    ws.FeedBlob("a", src)
    src[0, 0] = 100.0  # the workspace holds a copy
    assert isinstance(ws.fetch_tensor("a"), torch.Tensor)
    np.testing.assert_array_equal(ws.FetchBlob("a"), [[1.0, -2.0]])
    ws.FeedBlob("b", torch.tensor([3], dtype=torch.int64))
    fetched = ws.FetchBlob("b")
    assert isinstance(fetched, np.ndarray) and fetched.dtype == np.int64
    fetched[0] = 0  # FetchBlob returns a copy
    assert ws.FetchBlob("b")[0] == 3
    ws.FeedBlob("s", "a string blob")
    assert ws.FetchBlob("s") == "a string blob"
    assert ws.HasBlob("a") and not ws.HasBlob("zz")
    assert sorted(ws.Blobs()) == ["a", "b", "s"]


def test_fetch_missing_blob():
    with pytest.raises(OperatorInputError, match=r"Workspace 'w': blob 'nope' does not exist"):
        Workspace("w").FetchBlob("nope")


def test_run_net_once_and_create_run():
    ws = Workspace()
    ws.FeedBlob("x", torch.tensor([-1.0, 2.0]))
    ws.RunNetOnce(_relu_net())
    assert ws.FetchBlob("y").tolist() == [0.0, 2.0]
    ws.CreateNet(_relu_net())
    ws.FeedBlob("x", torch.tensor([5.0, -5.0]))
    ws.RunNet("relu_net")
    assert ws.FetchBlob("y").tolist() == [5.0, 0.0]
    ws.RunNet(_relu_net(), num_iter=2)  # by NetDef, like upstream
    assert ws.Nets() == ["relu_net"]
    with pytest.raises(ValueError, match="already exists"):
        ws.CreateNet(_relu_net())
    ws.CreateNet(_relu_net(), overwrite=True)
    with pytest.raises(KeyError, match="net 'other' was not created"):
        ws.RunNet("other")


def test_create_net_needs_inputs_unless_declared():
    ws = Workspace()
    net = caffe2_pb2.NetDef(name="n", op=[make_op("Relu", ["hidden"], ["y"])])
    with pytest.raises(OperatorInputError, match=r"op #0 'Relu' .*input blob 'hidden' does not exist"):
        ws.CreateNet(net)
    ws.CreateNet(net, input_blobs=["hidden"])  # created empty
    with pytest.raises(OperatorInputError, match=r"input blob 'hidden' is empty"):
        ws.RunNet("n")


def test_run_operator_once_and_reset():
    ws = Workspace()
    ws.FeedBlob("x", torch.tensor([-3.0]))
    ws.RunOperatorOnce(make_op("Negative", ["x"], ["y"]))
    assert ws.FetchBlob("y").tolist() == [3.0]
    ws.RemoveBlob("y")
    assert not ws.HasBlob("y")
    ws.CreateNet(_relu_net())
    ws.ResetWorkspace()
    assert ws.Blobs() == [] and ws.Nets() == []


def test_module_level_functions_and_scoped_ws():
    start = workspace.CurrentWorkspace()
    with ScopedWS("__test_scoped__", is_reset=True, is_cleanup=True) as ws:
        assert workspace.CurrentWorkspace() == "__test_scoped__"
        assert ws is workspace.current_workspace()
        workspace.FeedBlob("x", np.array([-1.0, 1.0], dtype=np.float32))
        workspace.RunNetOnce(_relu_net())
        assert workspace.FetchBlob("y").tolist() == [0.0, 1.0]
        assert workspace.HasBlob("y") and set(workspace.Blobs()) == {"x", "y"}
    assert workspace.CurrentWorkspace() == start
    with ScopedWS("__test_scoped__", is_reset=False) as ws:
        assert ws.Blobs() == []  # cleaned up on exit above
        ws.FeedBlob("keep", np.zeros(1))
    with ScopedWS("__test_scoped__", is_reset=False) as ws:
        assert ws.HasBlob("keep")
    with pytest.raises(KeyError, match="workspace 'never_made' does not exist"):
        workspace.SwitchWorkspace("never_made")
