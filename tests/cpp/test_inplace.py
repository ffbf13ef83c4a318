"""In-place Relu/Add/Sum in the C++ runtime's ProtobufModel (cpp/src/inplace.h).

A small residual net (parameters in an init net, channels-last filters) through ``caffe2_run_net
--show_inplace --show_layout --iters=2``: the ops it runs in place are the ones the Python planner
picks, and the outputs of its third run equal, bit for bit, the Python ProtobufModel (also in place)
and an out-of-place Python run with the same filter layout, so neither the fed input nor the
parameters were overwritten by the earlier runs. The hand-written op lists of
tests/caffe2/test_inplace.py, made runnable, check the C++ planner on its own.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from detectron2_export.caffe2.executor import Net
from detectron2_export.caffe2.inplace import plan_inplace
from detectron2_export.caffe2.layout import channels_last_filters
from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from tests.caffe2.helpers import make_op
from tests.caffe2.test_inplace import BLOB_VERSION_OPS, SINGLE_READER_OPS

from .cpp_runner import CppTools, run_net_on_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

ATOL = 1e-4  # the torch twin computes the convolutions with row-major filters


def _init_net(params: dict[str, torch.Tensor]) -> caffe2_pb2.NetDef:
    return caffe2_pb2.NetDef(
        name="inplace_init",
        op=[
            make_op("GivenTensorFill", [], [name], values=value.numpy().reshape(-1), shape=list(value.shape))
            for name, value in params.items()
        ],
    )


def _residual_net() -> caffe2_pb2.NetDef:
    conv = dict(kernel=3, pad=1)
    return caffe2_pb2.NetDef(
        name="inplace_residual",
        op=[
            make_op("Conv", ["data", "w", "b"], ["c1"], **conv),  # 0
            make_op("Relu", ["c1"], ["r1"]),  # 1: in place
            make_op("Conv", ["r1", "w", "b"], ["c2"], **conv),  # 2
            make_op("Add", ["c2", "data"], ["s"], broadcast=1),  # 3: in place, channels-last + row-major
            make_op("Relu", ["s"], ["r2"]),  # 4: in place (r2 is an output, s is not)
            make_op("Conv", ["r2", "w", "b"], ["c3"], **conv),  # 5
            make_op("Sum", ["c3", "r1", "data"], ["t"]),  # 6: in place
            make_op("Relu", ["data"], ["rd"]),  # 7: a fed input, never
            make_op("Relu", ["b"], ["rb"]),  # 8: a parameter, never
            make_op("Add", ["t", "rd"], ["out"]),  # 9: in place
            make_op("Conv", ["out", "w", "b"], ["c4"], **conv),  # 10
            make_op("Add", ["c4", "b"], ["c5"], broadcast=1, axis=1),  # 11: planned, broadcasts: regular Add
            make_op("Relu", ["c5"], ["final"]),  # 12: in place
        ],
        external_input=["data", "w", "b"],
        external_output=["out", "rd", "rb", "r2", "final"],
    )


def _torch_reference(data: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
    def conv(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, w, b, padding=1)

    r1 = torch.relu(conv(data))
    r2 = torch.relu(conv(r1) + data)
    out = conv(r2) + r1 + data + torch.relu(data)
    final = torch.relu(conv(out) + b.reshape(1, -1, 1, 1))
    return {"out": out, "rd": torch.relu(data), "rb": torch.relu(b), "r2": r2, "final": final}


def _run_cpp(tools: CppTools, d: Path, predict: caffe2_pb2.NetDef, init: caffe2_pb2.NetDef,
             inputs: list[np.ndarray], *flags: str) -> tuple[dict[str, np.ndarray], str]:
    return run_net_on_files(tools, d, predict, init, inputs, "--show_inplace", *flags)


def _printed_plan(stdout: str) -> list[int]:
    (line,) = [line for line in stdout.splitlines() if line.startswith("In-place ops: ")]
    return [int(i) for i in re.findall(r"\d+", line)]


def _python_plan(net: caffe2_pb2.NetDef) -> list[int]:
    ops = [(op.type, list(op.input), list(op.output)) for op in net.op]
    return sorted(plan_inplace(ops, set(net.external_output)))


def _python_runs(predict: caffe2_pb2.NetDef, init: caffe2_pb2.NetDef,
                 params: dict[str, torch.Tensor], inputs: list[np.ndarray]) -> tuple[list, dict[str, torch.Tensor]]:
    """ProtobufModel's outputs (in place) and an out-of-place run with the same channels-last filters,
    both on one thread like the C++ tool."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model_outputs = ProtobufModel(predict, init)(inputs)
        graph_inputs = [name for name in predict.external_input if name not in params]
        blobs = {name: value.clone() for name, value in params.items()}
        blobs.update({name: torch.from_numpy(value) for name, value in zip(graph_inputs, inputs)})
        channels_last_filters(predict, blobs)
        Net(predict, blobs).run(blobs)
    finally:
        torch.set_num_threads(threads)
    return model_outputs, {name: blobs[name] for name in predict.external_output}


@pytest.fixture(scope="module")
def residual_run(cpp_tools, tmp_path_factory):
    g = torch.Generator().manual_seed(0)
    params = {"w": torch.randn(4, 4, 3, 3, generator=g) * 0.3, "b": torch.randn(4, generator=g)}
    data = torch.randn(2, 4, 6, 7, generator=g)
    predict, init = _residual_net(), _init_net(params)
    outputs, stdout = _run_cpp(cpp_tools, tmp_path_factory.mktemp("inplace"), predict, init, [data.numpy()],
                               "--iters=2", "--show_layout")
    return params, data, predict, init, outputs, stdout


def test_residual_net_runs_the_python_plan_in_place(residual_run):
    *_, predict, _, _, stdout = residual_run
    assert _printed_plan(stdout) == _python_plan(predict) == [1, 3, 4, 6, 9, 11, 12]
    assert "Channels-last filters: ['w']" in stdout.splitlines()
    layouts = dict(re.findall(r"Output '(\w+)' layout: ([\w-]+)", stdout))
    # add_ and relu_ keep the strides of input 0, the channels-last output of a convolution.
    assert layouts["r2"] == layouts["out"] == layouts["final"] == "channels-last"
    assert layouts["rd"] == layouts["rb"] == "row-major"


def test_residual_net_outputs_are_bitwise_equal_to_python_and_out_of_place(residual_run):
    params, data, predict, init, outputs, _ = residual_run
    model_outputs, out_of_place = _python_runs(predict, init, params, [data.numpy()])
    reference = _torch_reference(data, params["w"], params["b"])
    for name, model_value in zip(predict.external_output, model_outputs):
        np.testing.assert_array_equal(outputs[name], out_of_place[name].numpy(), err_msg=name)
        np.testing.assert_array_equal(outputs[name], model_value.numpy(), err_msg=name)
        np.testing.assert_allclose(outputs[name], reference[name].numpy(), rtol=0, atol=ATOL, err_msg=name)
    assert (outputs["final"] > 0).any() and (outputs["out"] < 0).any()  # the Relus clip something


def _runnable(name: str, ops: list[tuple[str, list[str], list[str]]], outputs: list[str]) -> caffe2_pb2.NetDef:
    """The op list as a net on x (1, 2, 3, 3) and a (2, 2, 1, 1) filter w: every op keeps the shape."""
    return caffe2_pb2.NetDef(
        name=name,
        op=[make_op(t, i, o, kernel=1) if t == "Conv" else make_op(t, i, o) for t, i, o in ops],
        external_input=["x", "w"],
        external_output=outputs,
    )


PLAN_CASES = {
    "single_reader_fresh_temporaries": (
        [
            *SINGLE_READER_OPS,
            ("Alias", ["h"], ["k"]),  # 14
            ("Relu", ["k"], ["m"]),  # 15: k shares h's storage -> no
        ],
        ["e", "rx", "rw", "t", "v", "m"],
        [1, 5, 8],
    ),
    "blob_versions": (BLOB_VERSION_OPS, ["y"], [1, 4]),
}


@pytest.mark.parametrize("case", sorted(PLAN_CASES))
def test_plan_on_hand_written_op_lists(cpp_tools, tmp_path, case):
    ops, outputs, expected = PLAN_CASES[case]
    g = torch.Generator().manual_seed(1)
    params = {"w": torch.randn(2, 2, 1, 1, generator=g)}
    x = torch.randn(1, 2, 3, 3, generator=g).numpy()
    predict, init = _runnable(case, ops, outputs), _init_net(params)
    got, stdout = _run_cpp(cpp_tools, tmp_path, predict, init, [x])
    assert _printed_plan(stdout) == _python_plan(predict) == expected
    model_outputs, out_of_place = _python_runs(predict, init, params, [x])
    for name, model_value in zip(outputs, model_outputs):
        np.testing.assert_array_equal(got[name], out_of_place[name].numpy(), err_msg=name)
        np.testing.assert_array_equal(got[name], model_value.numpy(), err_msg=name)
    for name, source in (("rx", x), ("rw", params["w"].numpy())):
        if name in got:  # the fed input and the parameter, read after the in-place ops
            np.testing.assert_array_equal(got[name], np.maximum(source, 0), err_msg=name)
