"""batched_nms_rotated on 2,000 boxes: this project's blocked greedy vs the previous implementation.

The previous implementation (kept as ``tests/layers/rotated_nms_reference.py``) moved the
categories apart as today, computed the polygon of every pair of the 2,000 boxes, then ran the
greedy loop. Both run here on the same boxes, one thread; the kept indices are checked equal and
the time ratio printed (medians of ``--iters`` calls, one call of the previous implementation;
wall and CPU time: CPU time is steadier on a shared machine).

    python benchmarks/nms_rotated.py [--iters 3] [--no-reference]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Callable

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from detectron2_export.layers import batched_nms_rotated  # noqa: E402
from detectron2_export.layers.nms import separate_categories_rotated  # noqa: E402
from tests.layers.rotated_nms_reference import clustered_rotated_boxes, greedy_nms_rotated  # noqa: E402

N_BOXES = 2000


def cases() -> list[tuple[str, torch.Tensor, torch.Tensor, torch.Tensor, float]]:
    """(name, boxes, scores, idxs, iou_threshold), seeded."""
    g = torch.Generator().manual_seed(0)
    out = []
    for name, n_objects, jitter, extent, n_classes, thresh in (
        ("RRPN-like: 30 objects, 5 levels, IoU 0.7", 30, 5.0, 1000.0, 5, 0.7),
        ("box head: 20 objects, 10 classes, IoU 0.5", 20, 3.0, 1000.0, 10, 0.5),
        ("uniform: 2000 objects, 5 classes, IoU 0.5", N_BOXES, 0.0, 1000.0, 5, 0.5),
        ("one dense cluster, 1 class, IoU 0.9", 1, 8.0, 0.0, 1, 0.9),
    ):
        boxes = clustered_rotated_boxes(N_BOXES, n_objects, jitter, g, extent=extent, max_size=100.0)
        scores = torch.rand(N_BOXES, generator=g)
        idxs = torch.randint(0, n_classes, (N_BOXES,), generator=g)
        out.append((name, boxes, scores, idxs, thresh))
    return out


def timed(fn: Callable[[], list[int]], iters: int) -> tuple[float, float, list[int]]:
    """Median wall and CPU seconds of ``iters`` calls, and the last result."""
    walls, cpus, result = [], [], []
    for _ in range(iters):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow previous implementation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {N_BOXES} boxes per call")
    for name, boxes, scores, idxs, thresh in cases():
        fast_s, fast_cpu, kept = timed(lambda: batched_nms_rotated(boxes, scores, idxs, thresh).tolist(), args.iters)
        line = f"{name:<44} {fast_s * 1000:7.1f} ms ({fast_cpu * 1000:6.1f} ms CPU), {len(kept):4d} kept"
        if not args.no_reference:
            separated = separate_categories_rotated(boxes, idxs)
            ref_s, ref_cpu, ref_kept = timed(lambda: greedy_nms_rotated(separated, scores, thresh), 1)
            same = "same kept indices" if ref_kept == kept else "KEPT INDICES DIFFER"
            line += f" | previous {ref_s:6.2f} s ({ref_cpu:6.2f} s CPU): {ref_cpu / fast_cpu:4.0f}x less CPU, {same}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
