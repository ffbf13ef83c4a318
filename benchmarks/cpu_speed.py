"""The CPU runtimes of mask_rcnn_R_50_FPN_3x side by side, against eager and the fp32 floor (issue 17).

Model and input as ``benchmarks/onnx_runtime.py`` (random weights giving 100 detections, a shapes
image resized to 800x1216, ``--threads`` threads). Every row runs the network with its in-graph
post-processing and returns raw outputs (28x28 mask probabilities, no pasting), so that all do the
same work:

* eager: ``model.inference(inputs, do_postprocess=False)``;
* Caffe2 runtime, Python: ``ProtobufModel(predict_net, init_net)`` on ``data``/``im_info``;
* Caffe2 runtime, C++: the ``caffe2_run_net`` binary of ``cpp/build`` (``--iters 1``: one warm-up
  and one timed run per call; its own reported latency, so no CPU seconds);
* Caffe2 runtime, Python, bf16: ``ProtobufModel(..., precision="bf16")`` where that keyword exists;
* onnxruntime fp32: ``OnnxRuntimeModel.run`` of ``export_onnx`` with a dynamic batch (batch
  isolation in the graph) and of the fixed batch-1 export (no isolation);
* onnxruntime int8: the fixed batch-1 export with ``quantize="int8"``, calibrated on the first
  ``--calibration-images`` images of shapes_val at the model's test-time size.

Latency is the median of ``--repeats`` calls after a warm-up, all rows alternating. Each row is
printed as a ratio to eager and to the fp32 floor: the model's FLOPs (convolutions and matrix
products, counted by ``export/onnx/profiling.py`` from an onnxruntime profile of the fp32 run) over
the machine's fp32 peak (a 4096^2 float32 matmul with torch at the same thread count, timed as one
more alternating row so that the machine's load weighs on it alike). The
onnxruntime profiles of the fp32 and int8 graphs (top op types) are printed too.

Run from the repository root: ``python3 benchmarks/cpu_speed.py [--threads N] [--repeats R]``
(459 s with the defaults on the shared 2-core machine at a load average of 6 to 7). Measured there
(wall x eager / CPU x eager): Caffe2 Python 0.72x / 0.76x, C++ 0.93x, bf16 0.36x / 0.47x,
onnxruntime fp32 dynamic batch 0.55x / 0.71x, batch-1 graph 0.47x / 0.63x, int8 0.17x / 0.24x.
Under such load torch's OpenMP rows (eager, the Caffe2 runtimes, the matmul peak) lose more than
onnxruntime's own thread pool: the peak then reads 63 GFLOP/s where convolutions reach 130.
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Optional

import numpy as np
import onnxruntime as ort
import torch

from common import REPO, RunClock, Timing, alternating_times, setup

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.export import Caffe2Tracer, OnnxRuntimeModel, export_onnx
from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
from detectron2_export.export.onnx.profiling import matmul_seconds, profile_onnxruntime

CPP_BINARY = os.path.join(REPO, "cpp", "build", "caffe2_run_net")
PEAK_SIZE = 4096
TARGETS = {"caffe2": 0.6, "ort_fp32_b1": 0.5, "ort_int8": 0.3}
"""Issue 17's targets, as ratios to eager."""


def has_bf16_runtime() -> bool:
    """Whether ``ProtobufModel`` takes ``precision=`` (the bf16 runtime)."""
    return "precision" in inspect.signature(ProtobufModel.__init__).parameters


class CppRunner:
    """``caffe2_run_net`` on a saved model: each call loads it, runs once to warm up, then times
    one run and returns the latency the binary prints."""

    def __init__(self, model_dir: str, data: torch.Tensor, im_info: torch.Tensor, threads: int, work: str) -> None:
        np.save(os.path.join(work, "data.npy"), data.numpy())
        np.save(os.path.join(work, "im_info.npy"), im_info.numpy())
        self.command = [
            CPP_BINARY, f"--predict_net={model_dir}/model.pb", f"--init_net={model_dir}/model_init.pb",
            f"--inputs={work}/data.npy,{work}/im_info.npy", f"--output_dir={work}/cpp_out", "--iters=1",
            f"--threads={threads}",
        ]
        self.out_dir = os.path.join(work, "cpp_out")
        self.latencies: list[float] = []

    def __call__(self) -> int:
        proc = subprocess.run(self.command, check=True, capture_output=True, text=True)
        self.latencies.append(float(re.search(r"Latency: ([0-9.e+-]+) seconds per run", proc.stdout).group(1)))
        names = open(os.path.join(self.out_dir, "outputs.txt")).read().split()
        return int(np.load(os.path.join(self.out_dir, f"output_{names.index('bbox_nms')}.npy")).shape[0])


def ort_options(threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per row")
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    parser.add_argument("--calibration-images", type=int, default=4)
    args = parser.parse_args()
    clock = RunClock()
    cfg, inputs, model = setup(args.threads, tuple(args.size))
    with torch.no_grad(), tempfile.TemporaryDirectory(prefix="cpu_speed_") as work:
        c2_model = Caffe2Tracer(cfg, model, inputs).export_caffe2()
        model_dir = os.path.join(work, "model")
        c2_model.save_protobuf(model_dir)
        data, im_info = convert_batched_inputs_to_c2_format(inputs, model.backbone.size_divisibility, "cpu")
        bbox_index = list(c2_model.predict_net.external_output).index("bbox_nms")
        exports = {
            "ort_fp32_dyn": export_onnx(cfg, model, inputs),
            "ort_fp32_b1": export_onnx(cfg, model, inputs, dynamic_batch=False),
        }
        wall = time.perf_counter()
        exports["ort_int8"] = export_onnx(
            cfg, model, inputs, dynamic_batch=False, quantize="int8", calibration="shapes_val",
            calibration_images=args.calibration_images,
        )
        quantize_seconds = time.perf_counter() - wall
        ort_models = {name: OnnxRuntimeModel(m, sess_options=ort_options(args.threads)) for name, m in exports.items()}

        runners: dict[str, Callable[[], int]] = {
            "eager": lambda: len(model.inference(inputs, do_postprocess=False)[0]),
        }
        python_c2 = ProtobufModel(c2_model.predict_net, c2_model.init_net)
        runners["caffe2"] = lambda: int(python_c2([data, im_info])[bbox_index].shape[0])
        cpp: Optional[CppRunner] = None
        if os.path.isfile(CPP_BINARY):
            cpp = CppRunner(model_dir, data, im_info, args.threads, work)
            runners["caffe2_cpp"] = cpp
        if has_bf16_runtime():
            bf16_c2 = ProtobufModel(c2_model.predict_net, c2_model.init_net, precision="bf16")
            runners["caffe2_bf16"] = lambda: int(bf16_c2([data, im_info])[bbox_index].shape[0])
        for name, m in ort_models.items():
            runners[name] = lambda m=m: int(m.run(inputs)["num_instances"][0])

        detections: dict[str, int] = {}

        def counted(name: str, fn: Callable[[], int]) -> Callable[[], None]:
            def call() -> None:
                detections[name] = fn()

            return call

        matmuls: list[float] = []
        timed = {name: counted(name, fn) for name, fn in runners.items()}
        timed["peak"] = lambda: matmuls.append(matmul_seconds(PEAK_SIZE))
        times = alternating_times(timed, args.repeats)
        del times["peak"]
        peak = 2.0 * PEAK_SIZE**3 / min(matmuls[1:]) / 1e9
        profiles = {name: profile_onnxruntime(ort_models[name], inputs, runs=1, warmup=1, sess_options=ort_options(args.threads),
                                              peak_gflops_per_s=peak) for name in ("ort_fp32_b1", "ort_int8")}

    median = {name: Timing(statistics.median(t.wall for t in ts), statistics.median(t.cpu for t in ts)) for name, ts in times.items()}
    if cpp is not None:
        median["caffe2_cpp"] = Timing(statistics.median(cpp.latencies[1:]), float("nan"))
    flops = profiles["ort_fp32_b1"].total_flops
    floor = flops / 1e9 / peak
    labels = {
        "eager": "eager model.inference (no postprocess)",
        "caffe2": "Caffe2 runtime, Python (ProtobufModel)",
        "caffe2_cpp": "Caffe2 runtime, C++ (caffe2_run_net)",
        "caffe2_bf16": "Caffe2 runtime, Python, bf16",
        "ort_fp32_dyn": "onnxruntime fp32, dynamic batch",
        "ort_fp32_b1": "onnxruntime fp32, batch-1 graph",
        "ort_int8": "onnxruntime int8 (QDQ), batch-1 graph",
    }
    h, w = args.size
    print(f"mask_rcnn_R_50_FPN_3x, CPU, {args.threads} threads, input {h}x{w}, torch {torch.__version__}, "
          f"onnxruntime {ort.__version__}")
    print(f"fp32 peak {peak:.1f} GFLOP/s ({PEAK_SIZE}^2 float32 matmul, torch, {args.threads} threads, best of "
          f"{args.repeats} timed among the rows); model "
          f"{flops / 1e9:.1f} GFLOP (conv + matmul, onnxruntime profile); fp32 floor {floor:.3f} s")
    print(f"int8 export (calibration on {args.calibration_images} shapes_val images included): {quantize_seconds:.1f} s")
    print(f"{f'median of {args.repeats}':<42}{'dets':>5}{'wall s':>9}{'x eager':>9}{'x floor':>9}{'CPU s':>8}"
          f"{'x eager':>9}{'target (wall)':>15}")
    base = median["eager"]
    for name, t in median.items():
        target = f"<={TARGETS[name]:.1f} " + ("met" if t.wall / base.wall <= TARGETS[name] else "NOT") if name in TARGETS else ""
        cpu = f"{t.cpu:>8.2f}{t.cpu / base.cpu:>8.2f}x" if t.cpu == t.cpu else f"{'-':>8}{'-':>9}"
        print(f"{labels[name]:<42}{detections[name]:>5}{t.wall:>9.3f}{t.wall / base.wall:>8.2f}x{t.wall / floor:>8.2f}x{cpu}{target:>15}")
    print("CPU s: process CPU seconds, all threads (the shared machine's load inflates the wall clock more)")
    if not has_bf16_runtime():
        print("Caffe2 runtime, Python, bf16: not available (ProtobufModel has no precision= keyword)")
    if cpp is None:
        print(f"Caffe2 runtime, C++: not available ({CPP_BINARY} not built)")
    for name, profile in profiles.items():
        print(f"\n{labels[name]}:\n{profile.format(top=10)}")
    print("\n" + clock.summary())


if __name__ == "__main__":
    main()
