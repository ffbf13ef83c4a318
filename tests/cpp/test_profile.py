"""``caffe2_run_net --profile``: the time-per-op-type table of cpp/src/profiler.h, with conv FLOPs.

Net: Conv 16 -> 32 channels, 3x3, pad 1 on (1, 16, 32, 40) (FLOPs = 2 * (32*32*40 outputs) *
(16*3*3 multiply-adds) = 11,796,480), Sigmoid, FC 40960 -> 6 (FLOPs = 2 * 6 * 40960 = 491,520).
"""

from __future__ import annotations

import re

import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from tests.caffe2.helpers import make_op
from tests.caffe2.test_fusion import init_net

from .cpp_runner import CppTools, run_net_on_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

CONV_FLOPS = 2 * (32 * 32 * 40) * (16 * 3 * 3)
FC_FLOPS = 2 * 6 * 32 * 32 * 40
ITERS = 3


def _nets() -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    g = torch.Generator().manual_seed(0)
    params = {
        "w": torch.randn(32, 16, 3, 3, generator=g) * 0.1,
        "b": torch.randn(32, generator=g),
        "fw": torch.randn(6, 32 * 32 * 40, generator=g) * 0.01,
        "fb": torch.randn(6, generator=g),
    }
    init = init_net(params)
    predict = caffe2_pb2.NetDef(
        name="profiled",
        op=[
            make_op("Conv", ["data", "w", "b"], ["c"], kernel=3, pad=1),
            make_op("Sigmoid", ["c"], ["s"]),
            make_op("FC", ["s", "fw", "fb"], ["y"]),
        ],
        external_input=["data", *params],
        external_output=["y"],
    )
    return predict, init


def test_profile_table_has_each_op_type_share_and_conv_gflops(cpp_tools: CppTools, tmp_path):
    predict, init = _nets()
    data = torch.randn(1, 16, 32, 40).numpy()
    _, stdout = run_net_on_files(cpp_tools, tmp_path, predict, init, [data], f"--iters={ITERS}", "--profile")
    lines = stdout.splitlines()
    start = lines.index(f"profile of {ITERS} runs")
    assert lines[start + 1].split() == ["op", "type", "calls/run", "ms/run", "share", "GFLOP/run", "GFLOP/s", "of", "peak"]
    rows = {line.split()[0]: line.split() for line in lines[start + 3 : start + 6]}
    assert set(rows) == {"Conv", "Sigmoid", "FC"}
    assert all(float(r[1]) == 1.0 for r in rows.values())
    assert float(rows["Conv"][4]) == pytest.approx(CONV_FLOPS / 1e9, abs=1e-4)
    assert float(rows["FC"][4]) == pytest.approx(FC_FLOPS / 1e9, abs=1e-4)
    assert len(rows["Sigmoid"]) == 4  # no FLOP columns
    conv_ms = float(rows["Conv"][2])
    assert float(rows["Conv"][5]) == pytest.approx(CONV_FLOPS / (conv_ms / 1e3) / 1e9, rel=0.05, abs=0.2)
    assert sum(float(r[3].rstrip("%")) for r in rows.values()) == pytest.approx(100.0, abs=0.3)
    total = lines[start + 7].split()
    assert total[0] == "total" and float(total[1]) == 3.0
    peak = re.match(r"fp32 peak: ([0-9.]+) GFLOP/s \(4096\^2 float32 matmul, 1 threads\)", lines[start + 8])
    assert peak and float(peak.group(1)) > 1.0
    assert float(rows["Conv"][6].rstrip("%")) == pytest.approx(100 * float(rows["Conv"][5]) / float(peak.group(1)), abs=0.2)
