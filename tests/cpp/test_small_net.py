"""A hand-built NetDef (Conv -> Relu -> MaxPool -> FC -> Softmax, params in an init net) through
caffe2_run_net: against the torch twin, the Python runtime, and with the predict net as text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.serialization import net_to_text
from tests.caffe2.small_net import INPUT_SHAPE, build_nets, make_params, torch_reference

from .cpp_runner import run_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]


@pytest.fixture(scope="module")
def small_net(tmp_path_factory):
    params = make_params(seed=3)
    predict, init = build_nets(params)
    d = tmp_path_factory.mktemp("small_net")
    (d / "model.pb").write_bytes(predict.SerializeToString())
    (d / "model.pbtxt").write_text(net_to_text(predict))
    (d / "model_init.pb").write_bytes(init.SerializeToString())
    x = np.random.default_rng(3).standard_normal(INPUT_SHAPE).astype(np.float32)
    np.save(d / "data.npy", x)
    return d, params, predict, init, x


@pytest.mark.parametrize("predict_file", ["model.pb", "model.pbtxt"])
def test_small_net_matches_torch_and_python_runtime(cpp_tools, small_net, predict_file):
    d, params, predict, init, x = small_net
    out = d / f"out_{predict_file}"
    proc = run_tool(cpp_tools.run_net, f"--predict_net={d / predict_file}", f"--init_net={d / 'model_init.pb'}",
                    f"--inputs={d / 'data.npy'}", f"--output_dir={out}", "--threads=1")
    assert proc.returncode == 0, proc.stderr
    assert (out / "outputs.txt").read_text().split() == ["prob"]
    got = np.load(out / "output_0.npy")
    reference = torch_reference(torch.from_numpy(x), params).numpy()
    np.testing.assert_allclose(got, reference, rtol=0, atol=1e-5)
    (python_out,) = ProtobufModel(predict, init)([x])
    np.testing.assert_allclose(got, python_out.numpy(), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), np.ones(INPUT_SHAPE[0]), atol=1e-5)


def test_iters_prints_latency(cpp_tools, small_net):
    d, *_ = small_net
    proc = run_tool(cpp_tools.run_net, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--inputs={d / 'data.npy'}", "--iters=3", "--threads=1")
    assert proc.returncode == 0, proc.stderr
    assert "Latency: " in proc.stdout and "seconds per run" in proc.stdout


def test_registered_ops_match_python_runtime(cpp_tools):
    """The C++ registry implements exactly the op types of the Python registry."""
    from detectron2_export.caffe2.registry import registered_ops

    proc = run_tool(cpp_tools.run_net, "--list_ops")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == registered_ops()
