"""Building cpp/ once per session and running its tools from tests.

``build_cpp()`` configures (once) and builds the CMake project into ``cpp/build`` under a file lock,
so that pytest-xdist workers never build concurrently. ``run_batch`` runs many small nets in one
``caffe2_run_net --batch_dir`` process: one case directory per net with ``predict_net.pb``
(optional ``init_net.pb``) and ``input_<k>.npy``; the tool writes ``output_<k>.npy`` or ``error.txt``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from detectron2_export.caffe2.proto import caffe2_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
CPP_DIR = REPO_ROOT / "cpp"
BUILD_DIR = Path(os.environ.get("DETECTRON2_EXPORT_CPP_BUILD", CPP_DIR / "build"))
BUILD_TIMEOUT_S = 3600


@dataclass(frozen=True)
class CppTools:
    run_net: Path
    mask_rcnn: Path


def _missing_prerequisites() -> list[str]:
    missing = [tool for tool in ("cmake", "protoc", "c++", "pkg-config") if shutil.which(tool) is None]
    for package in ("opencv4", "gflags", "libglog", "protobuf"):
        if shutil.which("pkg-config") and subprocess.run(["pkg-config", "--exists", package]).returncode != 0:
            missing.append(package)
    return missing


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed ({' '.join(cmd)}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")


def build_cpp() -> CppTools:
    """Configure (if needed) and build cpp/; skips only when the build prerequisites are missing."""
    missing = _missing_prerequisites()
    if missing:
        pytest.skip(f"C++ runtime not built: missing {missing} (`make apt` installs them)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (BUILD_DIR / "CMakeCache.txt").exists():
            _run(
                ["cmake", "-S", str(CPP_DIR), "-B", str(BUILD_DIR), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DPython3_EXECUTABLE={sys.executable}"],
                "cmake configure",
            )
        _run(["cmake", "--build", str(BUILD_DIR), "-j2"], "cmake build")
    return CppTools(run_net=BUILD_DIR / "caffe2_run_net", mask_rcnn=BUILD_DIR / "caffe2_mask_rcnn")


@dataclass
class Case:
    """One net for ``caffe2_run_net --batch_dir``: inputs feed the graph inputs in order."""

    name: str
    predict_net: caffe2_pb2.NetDef
    inputs: list[np.ndarray] = field(default_factory=list)
    init_net: caffe2_pb2.NetDef | None = None


@dataclass
class CaseResult:
    outputs: list[np.ndarray] | None
    error: str | None


def run_batch(tools: CppTools, cases: list[Case], threads: int = 1) -> dict[str, CaseResult]:
    """Run every case in one process; returns name -> outputs (or the error text)."""
    with tempfile.TemporaryDirectory(prefix="cpp_batch_") as tmp:
        root = Path(tmp)
        for k, case in enumerate(cases):
            d = root / f"{k:04d}"
            d.mkdir()
            (d / "predict_net.pb").write_bytes(case.predict_net.SerializeToString())
            if case.init_net is not None:
                (d / "init_net.pb").write_bytes(case.init_net.SerializeToString())
            for i, value in enumerate(case.inputs):
                np.save(d / f"input_{i}.npy", np.asarray(value))
        proc = subprocess.run(
            [str(tools.run_net), f"--batch_dir={root}", f"--threads={threads}"],
            capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, f"caffe2_run_net --batch_dir failed:\n{proc.stdout}\n{proc.stderr}"
        results = {}
        for k, case in enumerate(cases):
            d = root / f"{k:04d}"
            if (d / "error.txt").exists():
                results[case.name] = CaseResult(None, (d / "error.txt").read_text().strip())
                continue
            n = len(case.predict_net.external_output)
            results[case.name] = CaseResult([np.load(d / f"output_{i}.npy") for i in range(n)], None)
        return results


def run_tool(binary: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=timeout)


def run_net_on_files(
    tools: CppTools, d: Path, predict: caffe2_pb2.NetDef, init: caffe2_pb2.NetDef, inputs: list[np.ndarray],
    *flags: str,
) -> tuple[dict[str, np.ndarray], str]:
    """Write the nets and inputs into ``d``, run ``caffe2_run_net`` (1 thread, extra ``flags``) on
    them, and return the external outputs by name and the tool's stdout."""
    (d / "model.pb").write_bytes(predict.SerializeToString())
    (d / "model_init.pb").write_bytes(init.SerializeToString())
    paths = []
    for k, value in enumerate(inputs):
        paths.append(str(d / f"input_{k}.npy"))
        np.save(paths[-1], value)
    out = d / "out"
    proc = run_tool(tools.run_net, f"--predict_net={d / 'model.pb'}", f"--init_net={d / 'model_init.pb'}",
                    f"--inputs={','.join(paths)}", f"--output_dir={out}", "--threads=1", *flags)
    assert proc.returncode == 0, proc.stderr
    names = list(predict.external_output)
    assert (out / "outputs.txt").read_text().split() == names
    return {name: np.load(out / f"output_{k}.npy") for k, name in enumerate(names)}, proc.stdout
