"""Seeded field-level mutations of the shapes export's predict net through caffe2_run_net (issue 15):
whatever a case does, the process never dies of a signal, stays under an address-space limit, and
each case either runs or fails with one of the runtime's error classes on one line.

CI runs DETECTRON2_EXPORT_CPP_FUZZ_CASES cases (default 40, seed DETECTRON2_EXPORT_CPP_FUZZ_SEED,
default 15); a longer run is the same test with a larger count, e.g. ``DETECTRON2_EXPORT_CPP_FUZZ_CASES=2000 python3 -m pytest -p no:xdist -q
tests/cpp/test_untrusted_fuzz.py``.
"""

from __future__ import annotations

import collections
import os
import resource
import subprocess
from pathlib import Path

import numpy as np
import pytest

from detectron2_export.caffe2.arguments import make_argument
from detectron2_export.caffe2.proto import caffe2_pb2

from .test_untrusted_model import _load, exported  # noqa: F401  (the module fixture)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cpp")]

CASES = int(os.environ.get("DETECTRON2_EXPORT_CPP_FUZZ_CASES", "40"))
SEED = int(os.environ.get("DETECTRON2_EXPORT_CPP_FUZZ_SEED", "15"))
ADDRESS_SPACE_LIMIT = 16 << 30  # libtorch alone maps a few GiB of address space
RUNTIME_ERRORS = ("ProtobufError", "UnknownOperatorError", "OperatorArgumentError", "OperatorInputError",
                  "Caffe2Error")
ARG_VALUES = [0, 1, -1, 3, 2**31 - 1, -(2**40), 2**62, 0.5, 1e30, float("nan"), float("-inf"), "NHWC", "x",
              [1, 2, 3], [-1], [2**40, 2**40], [0.5, 1e9]]
OP_TYPES = ["RoIAlign", "BatchPermutation", "BBoxTransform", "BoxWithNMSLimit", "Gather", "ResizeNearest",
            "GenerateProposals", "Reshape", "Concat", "Transpose", "ConstantFill", "NoSuchOp"]


def _mutate(net: caffe2_pb2.NetDef, rng: np.random.Generator) -> tuple[str, bytes]:
    """One random change of `net`: what it did, and the serialized result."""
    what = _mutate_fields(net, rng)
    if what:
        return what, net.SerializeToString()
    data = bytearray(net.SerializeToString())
    for _ in range(int(rng.integers(1, 8))):
        data[int(rng.integers(len(data)))] = int(rng.integers(256))
    return "byte flips", bytes(data)


def _mutate_fields(net: caffe2_pb2.NetDef, rng: np.random.Generator) -> str:
    """One random field-level change of `net` (in place): what it did, or "" for none."""
    k = int(rng.integers(len(net.op)))
    op = net.op[k]
    kind = int(rng.integers(6))
    if kind == 0 or (kind == 1 and not op.arg):
        value = ARG_VALUES[int(rng.integers(len(ARG_VALUES)))]
        name = op.arg[int(rng.integers(len(op.arg)))].name if op.arg and rng.random() < 0.8 else "spatial_scale"
        kept = [a for a in op.arg if a.name != name]
        del op.arg[:]
        op.arg.extend(kept + [make_argument(name, value)])
        return f"op {k} {op.type}: {name}={value!r}"
    if kind == 1:
        del op.arg[int(rng.integers(len(op.arg)))]
        return f"op {k} {op.type}: an argument removed"
    blobs = list(net.external_input) + [b for o in net.op[:k] for b in o.output]
    if kind == 2 and op.input:
        i = int(rng.integers(len(op.input)))
        op.input[i] = blobs[int(rng.integers(len(blobs)))]
        return f"op {k} {op.type}: input {i} = {op.input[i]}"
    if kind == 3:
        op.type = OP_TYPES[int(rng.integers(len(OP_TYPES)))]
        return f"op {k}: type {op.type}"
    if kind == 4:
        del net.op[k]
        return f"op {k} {op.type} removed"
    return ""


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


def test_mutated_predict_nets_fail_cleanly(cpp_tools, exported, tmp_path):  # noqa: F811
    d = exported.directory
    original = _load(d / "model.pb")
    rng = np.random.default_rng(SEED)
    what = {}
    for case in range(CASES):
        net = caffe2_pb2.NetDef()
        net.CopyFrom(original)
        case_dir = tmp_path / f"{case:05d}"
        case_dir.mkdir()
        what[case_dir.name], data = _mutate(net, rng)
        (case_dir / "predict_net.pb").write_bytes(data)
        (case_dir / "init_net.pb").symlink_to(d / "model_init.pb")
        (case_dir / "input_0.npy").symlink_to(d / "data.npy")
        (case_dir / "input_1.npy").symlink_to(d / "im_info.npy")
    proc = subprocess.run([str(cpp_tools.run_net), f"--batch_dir={tmp_path}", "--threads=1"], capture_output=True,
                          text=True, errors="replace", timeout=3000,
                          preexec_fn=_limit_address_space)
    done = sorted(p.name for p in tmp_path.iterdir() if (p / "error.txt").exists() or (p / "output_0.npy").exists())
    assert proc.returncode == 0, (
        f"caffe2_run_net exit {proc.returncode} after {len(done)} cases; next: "
        f"{what.get(f'{len(done):05d}')}\n{proc.stderr[-3000:]}"
    )
    outcomes = collections.Counter()
    for name, mutation in what.items():
        error_file = tmp_path / name / "error.txt"
        if not error_file.exists():
            outcomes["ran"] += 1
            continue
        raw = error_file.read_bytes().rstrip(b"\n")
        error = raw.decode("utf-8", errors="replace")
        kind = error.split(":", 1)[0]
        assert kind in RUNTIME_ERRORS and "\n" not in error and "\ufffd" not in error, f"{mutation}: {error}"
        outcomes[kind] += 1
    print(f"{CASES} mutated predict nets (seed {SEED}): {dict(outcomes)}")
    assert sum(outcomes.values()) == CASES
    assert outcomes["ran"] < CASES, f"no mutation was refused: {outcomes}"
