"""The onnxruntime profiler wrapper (``export/onnx/profiling.py``) on a hand-built two-layer model
whose FLOPs are counted by hand: a 3x3 convolution 16 -> 32 channels on 20x20 (padding 1), ReLU,
then a 2x2 stride-2 transposed convolution 32 -> 8 channels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from detectron2_export.errors import ExportError
from detectron2_export.export.onnx.profiling import (
    conv_flops,
    matmul_flops,
    measure_fp32_peak,
    parse_profile,
    profile_onnxruntime,
)

CONV_FLOPS = 2 * (32 * 20 * 20) * (16 * 3 * 3)
"""Each of the 32x20x20 outputs sums 16x3x3 products."""
DECONV_FLOPS = 2 * (32 * 20 * 20) * (8 * 2 * 2)
"""Each of the 32x20x20 inputs scatters into 8 channels x 2x2 outputs."""


def _tiny_model() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    weights = [
        numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "w1"),
        numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1"),
        numpy_helper.from_array(rng.standard_normal((32, 8, 2, 2)).astype(np.float32), "w2"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("ConvTranspose", ["r", "w2"], ["y"], name="deconv", kernel_shape=[2, 2], strides=[2, 2]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 20, 20])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 40, 40])],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_profile_counts_conv_flops_by_hand():
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 16, 20, 20)).astype(np.float32)}
    profile = profile_onnxruntime(_tiny_model(), feeds, runs=3, warmup=1, threads=1, peak_gflops_per_s=100.0)
    assert profile.runs == 3
    flops = sorted(c.flops for c in profile.convs)
    assert flops == [DECONV_FLOPS, CONV_FLOPS]
    assert sum(o.share for o in profile.op_types) == pytest.approx(1.0)
    assert profile.kernel_seconds <= profile.run_seconds
    conv = max(profile.convs, key=lambda c: c.flops)
    assert conv.gflops_per_s == pytest.approx(CONV_FLOPS / conv.seconds / 1e9)
    text = profile.format()
    assert "convolutions: 2 nodes" in text and "of the fp32 peak 100.0 GFLOP/s" in text
    assert profile.total_flops == CONV_FLOPS + DECONV_FLOPS


def test_profile_counts_matmul_flops_by_hand():
    # Gemm (3, 12) x (12, 7) + bias, then Relu: 3 * 7 outputs of 12 products each
    rng = np.random.default_rng(2)
    graph = helper.make_graph(
        [helper.make_node("Gemm", ["a", "b", "c"], ["g"], name="gemm"), helper.make_node("Relu", ["g"], ["y"], name="relu")],
        "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [3, 12])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 7])],
        initializer=[
            numpy_helper.from_array(rng.standard_normal((12, 7)).astype(np.float32), "b"),
            numpy_helper.from_array(rng.standard_normal(7).astype(np.float32), "c"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    feeds = {"a": rng.standard_normal((3, 12)).astype(np.float32)}
    profile = profile_onnxruntime(model, feeds, runs=2, threads=1, peak_gflops_per_s=100.0)
    assert profile.matmul_flops == 2 * 3 * 7 * 12
    assert profile.total_flops == profile.matmul_flops and not profile.convs
    assert matmul_flops([[2, 3, 12], [12, 7]], [[2, 3, 7]]) == 2 * 2 * 3 * 7 * 12


def test_conv_flops_of_recorded_shapes():
    assert conv_flops("Conv", [[1, 16, 20, 20], [32, 16, 3, 3], [32]], [[1, 32, 20, 20]]) == CONV_FLOPS
    assert conv_flops("ConvTranspose", [[1, 32, 20, 20], [32, 8, 2, 2]], [[1, 8, 40, 40]]) == DECONV_FLOPS
    # QLinearConv: x, x_scale, x_zero_point, w, ...; grouped (depthwise) weights are (C, 1, k, k)
    assert conv_flops("QLinearConv", [[1, 8, 5, 5], [], [], [8, 1, 3, 3]], [[1, 8, 5, 5]]) == 2 * 200 * 9
    with pytest.raises(ExportError, match="QLinearConv node .* expected a weight at input 3"):
        conv_flops("QLinearConv", [[1, 8, 5, 5]], [[1, 8, 5, 5]])


def test_parse_profile_drops_warmup_runs():
    def node(ts: int, dur: int) -> dict:
        return {"cat": "Node", "name": "relu_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": "Relu"}}

    runs = [{"cat": "Session", "name": "model_run", "ts": ts, "dur": 100} for ts in (0, 1000, 2000)]
    events = runs + [node(10, 90), node(1010, 30), node(2010, 50)]
    profile = parse_profile(events, warmup=1)
    assert profile.runs == 2 and profile.op_types[0].calls == 1
    assert profile.op_types[0].seconds == pytest.approx(40e-6)
    with pytest.raises(ExportError, match="3 model_run events, expected more than warmup=3"):
        parse_profile(events, warmup=3)


def test_profile_needs_every_graph_input():
    with pytest.raises(ExportError, match=r"inputs without \['x'\]"):
        profile_onnxruntime(_tiny_model(), {"z": np.zeros(1, np.float32)}, peak_gflops_per_s=1.0)


def test_measured_peak_is_a_matmul_rate():
    # a 256^2 matmul: 33.5 MFLOP, well under a second on any CPU that runs the suite
    peak = measure_fp32_peak(threads=1, size=256, repeats=2)
    assert 0.1 < peak < 1e5
