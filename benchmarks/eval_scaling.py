"""Throughput of ``caffe2_converter.py --run-eval`` with 1 worker x 2 threads vs 2 workers x 1 thread.

Runs the documented command on the bundled shapes Mask R-CNN twice, one after the other, in fresh
processes (the same machine, the same cores), and prints for each the evaluation time of both
models (PyTorch and Caffe2, from rank 0's "Evaluated both models" log line, which includes the
gather), the images per second over the two models, and the ratio to the single process; then
whether the two runs gave the same AP.

    python benchmarks/eval_scaling.py [--dataset shapes_val] [--setups 1x2,2x1] [KEY VALUE ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(REPO, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml")
WEIGHTS = os.path.join(REPO, "models", "mask_rcnn_R_18_FPN_shapes.pkl")


def run(workers: int, threads: int, dataset: str, opts: list[str]) -> dict:
    """One --run-eval in a fresh process; its evaluation time, image count, AP summary and wall time."""
    with tempfile.TemporaryDirectory(prefix="eval_scaling_") as tmp:
        argv = [
            sys.executable, os.path.join(REPO, "tools", "caffe2_converter.py"), "--config-file", CONFIG,
            "--output", os.path.join(tmp, "out"), "--run-eval",
            "--num-workers", str(workers), "--threads-per-worker", str(threads),
            "MODEL.WEIGHTS", WEIGHTS, "MODEL.DEVICE", "cpu", "DATASETS.TEST", f"('{dataset}',)", *opts,
        ]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO)
        wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{workers}x{threads} failed (status {proc.returncode}):\n{proc.stderr[-3000:]}")
    seconds = float(re.search(r"Evaluated both models in ([\d.]+) s", proc.stderr)[1])
    images = int(re.search(r"Evaluating the PyTorch model on \S+ \((\d+) images", proc.stderr)[1])
    summary = next(line for line in proc.stdout.splitlines() if line.startswith("Summary on"))
    return {"seconds": seconds, "images": images, "summary": summary, "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="shapes_val", help="a builtin dataset (DATASETS.TEST)")
    parser.add_argument("--setups", default="1x2,2x1", help="WORKERSxTHREADS, comma-separated; the first is the baseline")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="more config overrides, KEY VALUE ...")
    args = parser.parse_args()
    setups = [tuple(int(n) for n in setup.split("x")) for setup in args.setups.split(",")]

    print(f"caffe2_converter.py --run-eval on {args.dataset}, {os.cpu_count()} cores; PyTorch + Caffe2 models")
    print("| workers x threads | evaluation (both models) | images/s | vs first | whole run |")
    print("|---|---|---|---|---|")
    rows = []
    for workers, threads in setups:
        row = run(workers, threads, args.dataset, args.opts)
        rows.append(row)
        rate = 2 * row["images"] / row["seconds"]
        ratio = rows[0]["seconds"] / row["seconds"]
        print(
            f"| {workers} x {threads} | {row['seconds']:.1f} s | {rate:.2f} | {ratio:.2f}x | {row['wall']:.1f} s |",
            flush=True,
        )
    same = all(row["summary"] == rows[0]["summary"] for row in rows)
    print(f"same AP summary in every setup: {'yes' if same else 'no'}")
    for (workers, threads), row in zip(setups, rows):
        print(f"  {workers}x{threads}: {row['summary']}")


if __name__ == "__main__":
    main()
