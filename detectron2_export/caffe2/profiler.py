"""Time per operator type and achieved GFLOP/s of the convolutions, against the machine's fp32 peak.

``ProtobufModel(..., profile=True)`` records every op of every run into a ``Profile``;
``Profile.table()`` prints, per op type: calls per run, milliseconds per run, share of the total and,
for ops with a FLOP count (Conv, ConvTranspose, FC and the fused convolutions of ``fusion.py``),
GFLOP per run and GFLOP/s, also as a share of the peak. The peak is a 4096 x 4096 float32 matmul at
the current torch thread count, measured once per thread count (``fp32_peak_gflops``); it is what
the convolutions could reach at best on this machine.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

PEAK_MATMUL_SIZE = 4096
_peaks: dict[int, float] = {}
_peak_lock = threading.Lock()


def conv_flops(w_shape: Sequence[int], y_shape: Sequence[int]) -> int:
    """2 x multiply-adds of a convolution: filter (M, C/group, *K), Y (N, M, *S')."""
    return 2 * math.prod(y_shape) * math.prod(w_shape[1:])


def conv_transpose_flops(x_shape: Sequence[int], w_shape: Sequence[int]) -> int:
    """2 x multiply-adds of a transposed convolution: X (N, C, *S), filter (C, M/group, *K)."""
    return 2 * math.prod(x_shape) * math.prod(w_shape[1:])


def gemm_flops(m: int, n: int, k: int) -> int:
    return 2 * m * n * k


def _fc_flops(args: Sequence[Any], results: Sequence[Any]) -> int:
    y, w = results[0], args[1]
    return 2 * y.numel() * (w.numel() // max(y.shape[-1], 1))


FlopCounter = Callable[[Sequence[Any], Sequence[Any]], int]
FLOP_COUNTERS: dict[str, FlopCounter] = {
    "Conv": lambda args, results: conv_flops(args[1].shape, results[0].shape),
    "ConvTranspose": lambda args, results: conv_transpose_flops(args[0].shape, args[1].shape),
    "FC": _fc_flops,
    "FCTransposed": _fc_flops,
}
"""op type -> FLOPs of one call from its input and output tensors."""


def measure_fp32_peak(threads: int | None = None, size: int = PEAK_MATMUL_SIZE, repeats: int = 3) -> float:
    """GFLOP/s of a ``size`` x ``size`` float32 matmul with torch (best of ``repeats``, after a warm-up)
    at ``threads`` threads (default: torch's current count)."""
    previous = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        a = torch.randn(size, size)
        b = torch.randn(size, size)
        torch.mm(a, b)  # warm-up
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    finally:
        torch.set_num_threads(previous)
    return gemm_flops(size, size, size) / best / 1e9


def fp32_peak_gflops(threads: int | None = None) -> float:
    """:func:`measure_fp32_peak` at ``threads`` (default: torch's current count), measured once per count."""
    threads = threads or torch.get_num_threads()
    with _peak_lock:
        if threads not in _peaks:
            _peaks[threads] = measure_fp32_peak(threads)
        return _peaks[threads]


@dataclass
class OpTypeStats:
    calls: int = 0
    seconds: float = 0.0
    flops: int = 0
    timed_flop_seconds: float = 0.0
    """Seconds of the calls that have a FLOP count (the denominator of GFLOP/s)."""


class Profile:
    """Accumulated per-op-type time and FLOPs over ``runs`` net runs (safe to add from many threads)."""

    def __init__(self) -> None:
        self.stats: dict[str, OpTypeStats] = {}
        self.runs = 0
        self._lock = threading.Lock()

    def add_run(self, records: Sequence[tuple[str, float, int | None]]) -> None:
        """One run's ``(op type, seconds, flops or None)`` per executed op."""
        with self._lock:
            self.runs += 1
            for op_type, seconds, flops in records:
                s = self.stats.setdefault(op_type, OpTypeStats())
                s.calls += 1
                s.seconds += seconds
                if flops is not None:
                    s.flops += flops
                    s.timed_flop_seconds += seconds

    def reset(self) -> None:
        with self._lock:
            self.stats.clear()
            self.runs = 0

    def table(self, peak_gflops: float | None = None) -> str:
        """Per op type, slowest first: calls/run, ms/run, share, GFLOP/run, GFLOP/s, % of fp32 peak."""
        with self._lock:
            runs = max(self.runs, 1)
            rows = sorted(self.stats.items(), key=lambda kv: -kv[1].seconds)
            total = sum(s.seconds for _, s in rows)
            total_flops = sum(s.flops for _, s in rows)
            flop_seconds = sum(s.timed_flop_seconds for _, s in rows)
        peak = fp32_peak_gflops() if peak_gflops is None else peak_gflops
        header = f"{'op type':<22} {'calls/run':>9} {'ms/run':>10} {'share':>7} {'GFLOP/run':>10} {'GFLOP/s':>9} {'of peak':>8}"
        lines = [f"profile of {self.runs} runs", header, "-" * len(header)]

        def row(name: str, calls: float, seconds: float, flops: int, flop_seconds: float) -> str:
            share = seconds / total if total > 0 else 0.0
            text = f"{name:<22} {calls:>9.1f} {seconds / runs * 1e3:>10.2f} {share:>7.1%}"
            if flops and flop_seconds > 0:
                rate = flops / flop_seconds / 1e9
                text += f" {flops / runs / 1e9:>10.4f} {rate:>9.1f} {rate / peak:>8.1%}"
            return text

        for name, s in rows:
            lines.append(row(name, s.calls / runs, s.seconds, s.flops, s.timed_flop_seconds))
        lines.append("-" * len(header))
        lines.append(row("total", sum(s.calls for _, s in rows) / runs, total, total_flops, flop_seconds))
        lines.append(
            f"fp32 peak: {peak:.1f} GFLOP/s ({PEAK_MATMUL_SIZE}^2 float32 matmul, {torch.get_num_threads()} threads)"
        )
        return "\n".join(lines)
