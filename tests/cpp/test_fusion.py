"""Conv(+Add)(+Relu) fusion in the C++ runtime (cpp/src/fusion.h): the chains the Python runtime fuses,
and outputs equal to torch's.

The residual net of tests/caffe2/test_fusion.py through ``caffe2_run_net --show_ops``: the op types
it runs must be the Python ProtobufModel's, and its outputs must match a torch reference (F.conv2d,
+, relu on the original tensors) at rtol/atol 1e-5 and the Python runtime's at the same tolerance;
``--nofuse`` runs the unfused ops and gives the same values.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.fusion import fusion_available
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from tests.caffe2.helpers import make_op
from tests.caffe2.test_fusion import init_net

from .cpp_runner import CppTools, run_net_on_files

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("cpp"),
    pytest.mark.skipif(not fusion_available(), reason="this torch has no oneDNN pointwise convolution"),
]

TOL = {"rtol": 1e-5, "atol": 1e-5}


def _nets() -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    p = {
        "w1": torch.randn(8, 4, 3, 3, generator=g) * 0.3,
        "b1": torch.randn(8, generator=g),
        "w2": torch.randn(8, 8, 1, 1, generator=g) * 0.3,
        "b2": torch.randn(8, generator=g),
        "w3": torch.randn(8, 4, 3, 3, generator=g) * 0.3,
    }
    init = init_net(p)
    predict = caffe2_pb2.NetDef(
        name="residual",
        op=[
            make_op("Conv", ["x", "w1", "b1"], ["c1"], kernel=3, pad=1),
            make_op("Relu", ["c1"], ["r1"]),
            make_op("Conv", ["r1", "w2", "b2"], ["c2"], kernel=1),
            make_op("Conv", ["x", "w3"], ["short"], kernel=3, pad=1),
            make_op("Add", ["c2", "short"], ["s"]),
            make_op("Relu", ["s"], ["y"]),
            make_op("Conv", ["y", "w2", "b2"], ["c4"], kernel=1, stride=2),
            make_op("Add", ["r", "c4"], ["z"]),  # residual first, no Relu
            make_op("Conv", ["x", "w1", "b1"], ["kept"], kernel=3, pad=1),  # a net output: not fused
            make_op("Relu", ["kept"], ["kept_relu"]),
        ],
        external_input=["x", "r", *p],
        external_output=["y", "z", "kept", "kept_relu"],
    )
    return predict, init, p


def _reference(x: torch.Tensor, r: torch.Tensor, p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    r1 = F.conv2d(x, p["w1"], p["b1"], padding=1).relu()
    y = (F.conv2d(r1, p["w2"], p["b2"]) + F.conv2d(x, p["w3"], padding=1)).relu()
    kept = F.conv2d(x, p["w1"], p["b1"], padding=1)
    return {"y": y, "z": r + F.conv2d(y, p["w2"], p["b2"], stride=2), "kept": kept, "kept_relu": kept.relu()}


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "nofuse"])
def test_cpp_fuses_like_python_and_matches_torch(cpp_tools: CppTools, tmp_path, fuse):
    predict, init, p = _nets()
    g = torch.Generator().manual_seed(1)
    x, r = torch.randn(2, 4, 9, 11, generator=g), torch.randn(2, 8, 5, 6, generator=g)
    flags = ["--show_ops"] + ([] if fuse else ["--nofuse"])
    outputs, stdout = run_net_on_files(cpp_tools, tmp_path, predict, init, [x.numpy(), r.numpy()], *flags)
    (line,) = [line for line in stdout.splitlines() if line.startswith("Ops: ")]
    cpp_types = re.findall(r"'([^']+)'", line)
    python = ProtobufModel(predict, init, fuse=fuse)
    assert cpp_types == [op.op_type for op in python._net.ops]
    if fuse:
        assert cpp_types == ["Conv+Relu", "Conv", "Conv+Add+Relu", "Conv+Add", "Conv", "Relu"]
    expected = _reference(x, r, p)
    python_outputs = dict(zip(predict.external_output, python([x, r])))
    for name in predict.external_output:
        torch.testing.assert_close(torch.from_numpy(outputs[name]), expected[name], **TOL, msg=name)
        np.testing.assert_allclose(outputs[name], python_outputs[name].numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


def test_cpp_folds_parameter_copies_like_python(cpp_tools: CppTools, tmp_path):
    _, init, p = _nets()
    predict = caffe2_pb2.NetDef(
        name="copies",
        op=[
            make_op("Copy", ["b1"], ["b1_copy"]),
            make_op("Copy", ["b1"], ["b1_out"]),  # a net output: kept
            make_op("Conv", ["x", "w1", "b1_copy"], ["c"], kernel=3, pad=1),
            make_op("Relu", ["c"], ["y"]),
        ],
        external_input=["x", *p],
        external_output=["y", "b1_out"],
    )
    x = torch.randn(2, 4, 9, 11, generator=torch.Generator().manual_seed(2))
    outputs, stdout = run_net_on_files(cpp_tools, tmp_path, predict, init, [x.numpy()], "--show_ops")
    (line,) = [line for line in stdout.splitlines() if line.startswith("Ops: ")]
    python = ProtobufModel(predict, init)
    assert re.findall(r"'([^']+)'", line) == [op.op_type for op in python._net.ops] == ["Copy", "Conv+Relu"]
    torch.testing.assert_close(torch.from_numpy(outputs["y"]), F.conv2d(x, p["w1"], p["b1"], padding=1).relu(), **TOL)
    np.testing.assert_array_equal(outputs["b1_out"], p["b1"].numpy())
