"""The Caffe2 runtime profiler: time per op type and conv FLOPs (hand-computed) on a tiny net."""

from __future__ import annotations

import pytest
import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.caffe2.profiler import Profile, fp32_peak_gflops
from detectron2_export.errors import ExportError
from tests.caffe2.helpers import make_op
from tests.caffe2.test_fusion import init_net

# Conv 3->4 channels, 3x3, stride 2, pad 1 on (1, 3, 8, 10): Y (1, 4, 4, 5);
# FLOPs = 2 * (1*4*4*5 outputs) * (3*3*3 multiply-adds each) = 2 * 80 * 27 = 4320.
CONV_FLOPS = 4320
# FC 80 -> 6: 2 * 6 * 80 = 960.
FC_FLOPS = 960


def tiny_nets() -> tuple[caffe2_pb2.NetDef, caffe2_pb2.NetDef]:
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(4, 3, 3, 3, generator=g), torch.randn(4, generator=g)
    fw, fb = torch.randn(6, 80, generator=g), torch.randn(6, generator=g)
    init = init_net({"w": w, "b": b, "fw": fw, "fb": fb})
    predict = caffe2_pb2.NetDef(
        name="tiny",
        op=[
            make_op("Conv", ["data", "w", "b"], ["c"], kernel=3, stride=2, pad=1),
            make_op("Sigmoid", ["c"], ["s"]),
            make_op("FC", ["s", "fw", "fb"], ["y"], axis=1),
        ],
        external_input=["data", "w", "b", "fw", "fb"],
        external_output=["y"],
    )
    return predict, init


def test_profile_counts_ops_and_flops():
    model = ProtobufModel(*tiny_nets(), profile=True)
    x = torch.randn(1, 3, 8, 10)
    for _ in range(3):
        model([x])
    stats = model.profile.stats
    assert model.profile.runs == 3
    assert {k: v.calls for k, v in stats.items()} == {"Conv": 3, "Sigmoid": 3, "FC": 3}
    assert stats["Conv"].flops == 3 * CONV_FLOPS
    assert stats["FC"].flops == 3 * FC_FLOPS
    assert stats["Sigmoid"].flops == 0
    assert all(v.seconds > 0 for v in stats.values())
    table = model.profile_table(peak_gflops=100.0)
    lines = {line.split()[0]: line.split() for line in table.splitlines()[3:-3]}
    assert set(lines) == {"Conv", "Sigmoid", "FC"}
    conv = lines["Conv"]  # name, calls/run, ms/run, share, GFLOP/run, GFLOP/s, of peak
    assert float(conv[1]) == 1.0 and float(conv[4]) == pytest.approx(CONV_FLOPS / 1e9, abs=1e-4)
    rate = CONV_FLOPS / stats["Conv"].seconds * 3 / 1e9
    assert float(conv[5]) == pytest.approx(rate, rel=0.06, abs=0.1)
    assert len(lines["Sigmoid"]) == 4  # no FLOP columns for an op without a count
    shares = sum(float(line[3].rstrip("%")) for line in lines.values())
    assert shares == pytest.approx(100.0, abs=0.3)
    assert table.splitlines()[-1].startswith("fp32 peak: 100.0 GFLOP/s")


def test_profile_off_records_nothing_and_says_so():
    model = ProtobufModel(*tiny_nets())
    model([torch.randn(1, 3, 8, 10)])
    assert model.profile is None
    with pytest.raises(ExportError, match="profile=True"):
        model.profile_table()


def test_profile_merges_runs_from_threads():
    profile = Profile()
    profile.add_run([("Conv", 0.5, 10), ("Relu", 0.25, None)])
    profile.add_run([("Conv", 1.5, 30)])
    assert profile.runs == 2
    assert (profile.stats["Conv"].calls, profile.stats["Conv"].seconds, profile.stats["Conv"].flops) == (2, 2.0, 40)
    assert profile.stats["Relu"].timed_flop_seconds == 0.0


def test_fp32_peak_is_a_plausible_matmul_rate():
    peak = fp32_peak_gflops()
    assert 1.0 < peak < 1e5
    assert fp32_peak_gflops() == peak  # measured once per thread count
