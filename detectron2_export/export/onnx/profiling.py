"""Where onnxruntime's time goes: a run with ``SessionOptions.enable_profiling``, its JSON trace
summed per operator type (time, share of the total), and for convolutions the achieved GFLOP/s,
their FLOPs counted from the shapes the trace records, against the machine's measured fp32 peak
(a float32 matmul with torch at the same thread count)."""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Union

import torch

from ...caffe2.profiler import measure_fp32_peak
from ...errors import ExportError

CONV_WEIGHT_INPUT = {"Conv": 1, "FusedConv": 1, "NchwcConv": 1, "ConvTranspose": 1, "QLinearConv": 3, "ConvInteger": 1}
"""Convolution op types (as onnxruntime names its kernels after graph optimisation) -> index of the
weight among the node's inputs."""

TRANSPOSED = {"ConvTranspose"}
MATMULS = {"Gemm", "FusedGemm", "MatMul", "FusedMatMul", "QGemm", "MatMulInteger", "QLinearMatMul"}
"""Matrix products (A is input 0 of each) counted as ``2 * prod(A.shape) * N`` for an output (..., M, N)."""


@dataclass
class OpTypeTime:
    """Time of all nodes of one operator type over the profiled runs (seconds per run)."""

    op_type: str
    calls: int
    seconds: float
    share: float
    flops: float = 0.0

    @property
    def gflops_per_s(self) -> float:
        return self.flops / self.seconds / 1e9 if self.flops and self.seconds > 0 else 0.0


@dataclass
class ConvTime:
    """One convolution node's time per run and FLOPs (2 per multiply-add)."""

    name: str
    op_type: str
    seconds: float
    flops: float

    @property
    def gflops_per_s(self) -> float:
        return self.flops / self.seconds / 1e9 if self.seconds > 0 else 0.0


@dataclass
class OnnxProfile:
    """A parsed onnxruntime trace: per-run averages over ``runs`` profiled runs."""

    runs: int
    run_seconds: float
    """Wall time of one ``session.run`` (onnxruntime's ``model_run`` event)."""
    kernel_seconds: float
    """Sum of all node kernel times of one run (less than ``run_seconds`` by the executor's overhead)."""
    op_types: List[OpTypeTime]
    convs: List[ConvTime]
    matmul_flops: float = 0.0
    """FLOPs per run of the matrix products (Gemm, MatMul): with the convolutions', the model's."""
    peak_gflops_per_s: Optional[float] = None
    threads: Optional[int] = None
    extra: Dict[str, Any] = field(default_factory=dict)

    @property
    def total_flops(self) -> float:
        """FLOPs of one run: convolutions and matrix products."""
        return sum(c.flops for c in self.convs) + self.matmul_flops

    @property
    def conv_gflops_per_s(self) -> float:
        seconds = sum(c.seconds for c in self.convs)
        return sum(c.flops for c in self.convs) / seconds / 1e9 if seconds > 0 else 0.0

    def format(self, top: int = 15) -> str:
        """A table of the ``top`` op types by time, then the convolutions' totals against the peak."""
        lines = [
            f"onnxruntime profile: {self.runs} run(s), {self.run_seconds:.3f} s per run, "
            f"{self.kernel_seconds:.3f} s in kernels" + (f", {self.threads} threads" if self.threads else ""),
            f"{'op type':<28}{'calls':>7}{'s/run':>9}{'share':>8}{'GFLOP/s':>10}",
        ]
        for op in self.op_types[:top]:
            rate = f"{op.gflops_per_s:>10.1f}" if op.flops else f"{'':>10}"
            lines.append(f"{op.op_type:<28}{op.calls:>7}{op.seconds:>9.4f}{op.share:>7.1%}{rate}")
        conv_seconds = sum(c.seconds for c in self.convs)
        conv_flops = sum(c.flops for c in self.convs)
        line = (f"convolutions: {len(self.convs)} nodes, {conv_flops / 1e9:.1f} GFLOP, {conv_seconds:.3f} s, "
                f"{self.conv_gflops_per_s:.1f} GFLOP/s")
        if self.peak_gflops_per_s:
            line += (f" = {self.conv_gflops_per_s / self.peak_gflops_per_s:.0%} of the fp32 peak "
                     f"{self.peak_gflops_per_s:.1f} GFLOP/s (fp32 floor of the convolutions "
                     f"{conv_flops / 1e9 / self.peak_gflops_per_s:.3f} s)")
        lines.append(line)
        if self.peak_gflops_per_s:
            lines.append(f"model: {self.total_flops / 1e9:.1f} GFLOP (convolutions and matrix products): fp32 floor "
                         f"{self.total_flops / 1e9 / self.peak_gflops_per_s:.3f} s per run")
        return "\n".join(lines)


def matmul_seconds(size: int = 4096) -> float:
    """Seconds of one ``size`` x ``size`` float32 matmul with torch at its current thread count
    (``2 * size**3`` FLOPs), for timing the peak beside other work."""
    a = torch.randn(size, size)
    b = torch.randn(size, size)
    start = time.perf_counter()
    torch.mm(a, b)
    return time.perf_counter() - start


def _shapes(entries: Sequence[Dict[str, List[int]]]) -> List[List[int]]:
    """onnxruntime's ``[{"float": [1, 3, 8, 8]}, ...]`` -> ``[[1, 3, 8, 8], ...]``."""
    return [list(next(iter(entry.values()))) if entry else [] for entry in entries]


def conv_flops(
    op_type: str, input_shapes: List[List[int]], output_shapes: List[List[int]], weight_shape: Optional[List[int]] = None
) -> float:
    """FLOPs (2 per multiply-add) of a convolution node from its recorded shapes: every output
    element of a convolution sums ``prod(weight.shape[1:])`` products; every input element of a
    transposed convolution scatters ``prod(weight.shape[1:])`` of them. ``weight_shape`` stands in
    for the trace's weight (onnxruntime leaves out the weights its kernel pre-packed: the inputs
    after them move up)."""
    index = CONV_WEIGHT_INPUT[op_type]
    if weight_shape is not None:  # a pre-packed weight is missing from the trace's list, shifting the rest
        input_shapes = input_shapes[:index] + [[]] * (index - len(input_shapes)) + [weight_shape]
    if len(input_shapes) <= index or not input_shapes[index] or not output_shapes:
        raise ExportError(f"profiling: {op_type} node with inputs {input_shapes}, expected a weight at input {index}")
    per_element = math.prod(input_shapes[index][1:])
    elements = math.prod(input_shapes[0]) if op_type in TRANSPOSED else math.prod(output_shapes[0])
    return 2.0 * elements * per_element


def weight_shapes(model: Any) -> Dict[str, List[int]]:
    """{node name: shape of its weight initializer} of the convolutions of an (optimised) ONNX
    model or its path: the shapes of weights a profile trace leaves out."""
    import onnx

    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(model)
    initializers = {t.name: list(t.dims) for t in model.graph.initializer}
    shapes = {}
    for node in model.graph.node:
        index = CONV_WEIGHT_INPUT.get(node.op_type)
        if index is not None and len(node.input) > index and node.input[index] in initializers:
            shapes[node.name] = initializers[node.input[index]]
    return shapes


def matmul_flops(input_shapes: List[List[int]], output_shapes: List[List[int]]) -> float:
    """FLOPs of a (batched) matrix product A @ B with output (..., M, N): ``2 * prod(A) * N``."""
    if not input_shapes or not input_shapes[0] or not output_shapes or not output_shapes[0]:
        raise ExportError(f"profiling: matrix product with inputs {input_shapes}, outputs {output_shapes}, expected shapes")
    return 2.0 * math.prod(input_shapes[0]) * output_shapes[0][-1]


def parse_profile(
    events: Union[str, os.PathLike, List[Dict[str, Any]]],
    warmup: int = 0,
    weights: Optional[Dict[str, List[int]]] = None,
) -> OnnxProfile:
    """Sum an onnxruntime trace (the JSON file ``end_profiling`` wrote, or its events) per op type,
    leaving out the first ``warmup`` runs; ``weights`` (:func:`weight_shapes` of the optimised
    model) gives the convolution weights the trace leaves out."""
    weights = weights or {}
    if not isinstance(events, list):
        with open(events) as f:
            events = json.load(f)
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"), key=lambda e: e["ts"])
    if len(runs) <= warmup:
        raise ExportError(f"profiling: the trace has {len(runs)} model_run events, expected more than warmup={warmup}")
    start = runs[warmup]["ts"]
    runs = runs[warmup:]
    nodes = [e for e in events if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= start]
    per_type: Dict[str, List[float]] = {}
    convs: Dict[str, ConvTime] = {}
    matmuls = 0.0
    for e in nodes:
        op_type = e["args"].get("op_name", "?")
        seconds = e["dur"] / 1e6 / len(runs)
        entry = per_type.setdefault(op_type, [0, 0.0, 0.0])
        entry[0] += 1
        entry[1] += seconds
        if op_type in CONV_WEIGHT_INPUT:
            name = e["name"][: -len("_kernel_time")]
            args = e["args"]
            flops = conv_flops(
                op_type, _shapes(args.get("input_type_shape", [])), _shapes(args.get("output_type_shape", [])), weights.get(name)
            )
            entry[2] += flops / len(runs)
            conv = convs.setdefault(name, ConvTime(name, op_type, 0.0, 0.0))
            conv.seconds += seconds
            conv.flops += flops / len(runs)
        elif op_type in MATMULS:
            flops = matmul_flops(_shapes(e["args"].get("input_type_shape", [])), _shapes(e["args"].get("output_type_shape", [])))
            entry[2] += flops / len(runs)
            matmuls += flops / len(runs)
    kernel = sum(v[1] for v in per_type.values())
    op_types = [
        OpTypeTime(op, int(round(calls / len(runs))), seconds, seconds / kernel if kernel else 0.0, flops)
        for op, (calls, seconds, flops) in per_type.items()
    ]
    op_types.sort(key=lambda o: -o.seconds)
    return OnnxProfile(
        runs=len(runs),
        run_seconds=sum(r["dur"] for r in runs) / 1e6 / len(runs),
        kernel_seconds=kernel,
        op_types=op_types,
        convs=sorted(convs.values(), key=lambda c: -c.seconds),
        matmul_flops=matmuls,
    )


def profile_onnxruntime(
    model: Any,
    inputs: Union[Sequence[Dict], Dict[str, Any]],
    *,
    runs: int = 1,
    warmup: int = 1,
    threads: Optional[int] = None,
    sess_options: Any = None,
    peak_gflops_per_s: Optional[float] = None,
) -> OnnxProfile:
    """Profile ``runs`` runs (after ``warmup``) of a model with onnxruntime's profiler.

    Args:
        model: an :class:`OnnxRuntimeModel` (its file is reloaded with profiling on), a path, an
            ``onnx.ModelProto`` or serialised bytes (any ONNX model then: ``inputs`` must be feeds).
        inputs: detectron2 input dicts (for a file written by ``export_onnx``) or a dict of feeds
            {input name: numpy array}.
        threads: intra-op threads (default: torch's count); ignored when ``sess_options`` is given.
        sess_options: ``onnxruntime.SessionOptions`` to profile under (profiling is switched on).
        peak_gflops_per_s: the fp32 peak to compare with; default: :func:`measure_fp32_peak` at
            the same thread count.
    """
    import onnxruntime as ort

    from .io import batch_inputs
    from .runtime import OnnxRuntimeModel, model_source

    source = model.source if isinstance(model, OnnxRuntimeModel) else model_source(model, "profile_onnxruntime")
    if sess_options is None:
        sess_options = ort.SessionOptions()
        sess_options.intra_op_num_threads = threads or torch.get_num_threads()
        sess_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    threads = sess_options.intra_op_num_threads or threads
    with tempfile.TemporaryDirectory() as directory:
        sess_options.enable_profiling = True
        sess_options.profile_file_prefix = os.path.join(directory, "ort_profile")
        sess_options.optimized_model_filepath = os.path.join(directory, "optimized.onnx")
        try:
            session = ort.InferenceSession(source, sess_options, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime's exception types are not exported stably
            raise ExportError(f"profile_onnxruntime: onnxruntime could not load the model: {e}") from e
        finally:
            sess_options.enable_profiling = False
            sess_options.optimized_model_filepath = ""
        feeds = inputs if isinstance(inputs, dict) else batch_inputs(inputs)
        missing = [i.name for i in session.get_inputs() if i.name not in feeds]
        if missing:
            raise ExportError(f"profile_onnxruntime: inputs without {missing}, expected feeds for every graph input")
        feeds = {i.name: feeds[i.name] for i in session.get_inputs()}
        for _ in range(warmup + runs):
            session.run(None, feeds)
        profile = parse_profile(session.end_profiling(), warmup=warmup, weights=weight_shapes(os.path.join(directory, "optimized.onnx")))
    profile.threads = threads
    profile.peak_gflops_per_s = peak_gflops_per_s or measure_fp32_peak(threads)
    return profile
