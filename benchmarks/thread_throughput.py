"""Throughput of one thread-safe ProtobufModel called from 2 threads vs 2 models, side by side.

Exports the bundled shapes Mask R-CNN (or loads --model-dir), then runs --calls calls split over
--threads Python threads, each call with 1 intra-op thread (so the threads, not ATen, share the
cores): once on one shared ``ProtobufModel`` and once with a model per thread, alternating
--repeats times. Prints calls per second of both and their ratio (one shared model keeps one copy
of the parameters; the ratio says what that costs).

    python benchmarks/thread_throughput.py [--threads 2] [--calls 16] [--repeats 2] [--size 384 288]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from detectron2_export.caffe2.protobuf_model import ProtobufModel  # noqa: E402
from detectron2_export.caffe2.serialization import load_net  # noqa: E402


def calls_per_second(models: list[ProtobufModel], inputs: list[torch.Tensor], calls: int) -> float:
    """``calls`` calls split evenly over one thread per entry of ``models`` (which may repeat)."""
    per_thread = calls // len(models)
    start_line = threading.Barrier(len(models) + 1)

    def worker(model: ProtobufModel) -> None:
        torch.set_num_threads(1)
        start_line.wait()
        for _ in range(per_thread):
            model(inputs)

    threads = [threading.Thread(target=worker, args=(m,)) for m in models]
    for t in threads:
        t.start()
    start_line.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    return per_thread * len(models) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--size", type=int, nargs=2, default=(384, 288), help="H W of data (multiples of 32)")
    parser.add_argument("--model-dir", help="an exported model.pb/model_init.pb directory (default: export shapes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="thread_throughput_") as work:
        model_dir = Path(args.model_dir or work)
        if not args.model_dir:
            from tests.cpp.shapes_model import export_shapes_mask_rcnn

            sample = export_shapes_mask_rcnn(model_dir).data
        else:
            sample = torch.rand(1, 3, *args.size) * 255
        predict, init = load_net(model_dir / "model.pb"), load_net(model_dir / "model_init.pb")
        data = F.interpolate(sample, size=tuple(args.size), mode="bilinear", align_corners=False)
        inputs = [data, torch.tensor([[float(args.size[0]), float(args.size[1]), 1.0]])]
        shared = ProtobufModel(predict, init)
        separate = [ProtobufModel(predict, init) for _ in range(args.threads)]
        for m in separate:
            m(inputs)  # warm-up
        totals = {"one shared model": 0.0, "one model per thread": 0.0}
        for _ in range(args.repeats):
            totals["one shared model"] += calls_per_second([shared] * args.threads, inputs, args.calls)
            totals["one model per thread"] += calls_per_second(separate, inputs, args.calls)
    print(f"{args.threads} threads, {args.calls} calls per measurement, input {tuple(data.shape)}, mean of {args.repeats}")
    for name, total in totals.items():
        print(f"{name:<22} {total / args.repeats:8.2f} calls/s")
    shared_rate, separate_rate = (t / args.repeats for t in totals.values())
    print(f"shared / per-thread throughput: {shared_rate / separate_rate:.2f}x")


if __name__ == "__main__":
    main()
