"""Failures are clear: non-zero exit and a message naming the error class, the file or the op
(index, type, inputs, outputs) and what was expected; the C++ error class matches the Python one."""

from __future__ import annotations

import numpy as np
import pytest

from detectron2_export import errors
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.serialization import parse_message
from detectron2_export.caffe2.workspace import Workspace
from tests.caffe2.helpers import make_op

from .cpp_runner import Case, run_batch, run_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]


def _net(name: str, ops: list[caffe2_pb2.OperatorDef], inputs: list[str], outputs: list[str]) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(name=name, op=ops, external_input=inputs, external_output=outputs)


def _bad_arg_fields() -> caffe2_pb2.OperatorDef:
    op = make_op("Relu", ["x"], ["y"])
    op.arg.add(name="alpha", f=1.0, i=2)
    return op


x4 = np.ones((1, 2, 4, 4), np.float32)
ERROR_CASES = [
    # (name, net, inputs, expected error class, expected message fragments)
    ("unknown_op", _net("n", [make_op("NoSuchOp", ["x"], ["y"])], ["x"], ["y"]), [x4],
     errors.UnknownOperatorError, ["op #0 'NoSuchOp'", "not implemented"]),
    ("argument_out_of_range", _net("n", [make_op("RoIAlign", ["x", "r"], ["y"], pooled_h=0)], ["x", "r"], ["y"]),
     [x4, np.zeros((1, 5), np.float32)], errors.OperatorArgumentError, ["RoIAlign: pooled_h=0, expected an int >= 1"]),
    ("unknown_argument", _net("n", [make_op("Relu", ["x"], ["y"], foo=1)], ["x"], ["y"]), [x4],
     errors.OperatorArgumentError, ["unknown argument(s) ['foo']"]),
    ("missing_argument", _net("n", [make_op("Cast", ["x"], ["y"])], ["x"], ["y"]), [x4],
     errors.OperatorArgumentError, ["missing required argument 'to'"]),
    ("two_value_fields", _net("n", [_bad_arg_fields()], ["x"], ["y"]), [x4],
     errors.OperatorArgumentError, ["'alpha' sets fields"]),
    ("input_count", _net("n", [make_op("Conv", ["x"], ["y"], kernels=[1, 1])], ["x"], ["y"]), [x4],
     errors.OperatorInputError, ["Conv: 1 inputs, expected 2 to 3"]),
    ("bad_blob_shape", _net("n", [make_op("FC", ["x", "w", "b"], ["y"])], ["x", "w", "b"], ["y"]),
     [x4, np.ones((3, 5), np.float32), np.ones(3, np.float32)], errors.OperatorInputError,
     ["op #0 'FC' (inputs ['x', 'w', 'b'], outputs ['y'])", "K=32", "expects K=5"]),
    ("bad_rank", _net("n", [make_op("Conv", ["x", "w"], ["y"])], ["x", "w"], ["y"]),
     [np.ones((2, 2), np.float32), np.ones((1, 2, 1, 1), np.float32)], errors.OperatorInputError,
     ["Conv: X shape=(2, 2), expected 3-D or 4-D or 5-D"]),
    ("undefined_input_blob", _net("n", [make_op("Relu", ["nope"], ["y"])], ["x"], ["y"]), [x4],
     errors.OperatorInputError, ["input blob 'nope' does not exist"]),
]


@pytest.fixture(scope="module")
def cpp_errors(cpp_tools):
    return run_batch(cpp_tools, [Case(name, net, inputs) for name, net, inputs, *_ in ERROR_CASES])


@pytest.mark.parametrize("name,net,inputs,error_class,fragments", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_op_errors_match_python(cpp_errors, name, net, inputs, error_class, fragments):
    ws = Workspace(f"errors_{name}")
    for blob, value in zip(net.external_input, inputs):
        ws.FeedBlob(blob, value)
    with pytest.raises(error_class):
        ws.RunNetOnce(net)
    error = cpp_errors[name].error
    assert error is not None, "C++ accepted the net"
    assert error.startswith(error_class.__name__ + ": "), error
    for fragment in fragments:
        assert fragment in error


def test_missing_file(cpp_tools, tmp_path):
    proc = run_tool(cpp_tools.run_net, f"--predict_net={tmp_path / 'absent.pb'}")
    assert proc.returncode == 1
    assert "ProtobufError" in proc.stderr and "absent.pb: cannot open file" in proc.stderr


def test_corrupt_protobuf(cpp_tools, tmp_path):
    data = b"\x0a\xff\xff\xff\xff\x0f garbage"
    with pytest.raises(errors.ProtobufError):
        parse_message(data, where="corrupt.pb")
    path = tmp_path / "corrupt.pb"
    path.write_bytes(data)
    proc = run_tool(cpp_tools.run_net, f"--predict_net={path}")
    assert proc.returncode == 1
    assert f"ProtobufError: {path}: not a valid binary caffe2.NetDef" in proc.stderr


def test_corrupt_npy_input(cpp_tools, tmp_path):
    net = _net("n", [make_op("Relu", ["x"], ["y"])], ["x"], ["y"])
    (tmp_path / "model.pb").write_bytes(net.SerializeToString())
    (tmp_path / "x.npy").write_bytes(b"not an array")
    proc = run_tool(cpp_tools.run_net, f"--predict_net={tmp_path / 'model.pb'}", f"--inputs={tmp_path / 'x.npy'}")
    assert proc.returncode == 1
    assert "x.npy: not a .npy file" in proc.stderr


def test_wrong_number_of_inputs(cpp_tools, tmp_path):
    net = _net("n", [make_op("Add", ["a", "b"], ["y"])], ["a", "b"], ["y"])
    (tmp_path / "model.pb").write_bytes(net.SerializeToString())
    np.save(tmp_path / "a.npy", x4)
    proc = run_tool(cpp_tools.run_net, f"--predict_net={tmp_path / 'model.pb'}", f"--inputs={tmp_path / 'a.npy'}")
    assert proc.returncode == 1
    assert "got 1 inputs, expected 2 for the graph inputs ['a', 'b']" in proc.stderr
