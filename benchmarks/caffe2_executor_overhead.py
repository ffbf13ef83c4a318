"""Per-op overhead of the Caffe2 executor: a net of N chained cheap ops vs the same torch calls.

Builds ``y_{i+1} = Add(y_i, one)`` on 1-element tensors (N ops), creates the net once, then times
``Workspace.RunNet`` against a plain Python loop of ``torch.add``. Prints the overhead per op in
microseconds and the ratio; the target is < 20 us per op.
"""

from __future__ import annotations

import argparse
import time

import torch

from detectron2_export.caffe2.proto import caffe2_pb2
from detectron2_export.caffe2.workspace import Workspace


def build_chain(n_ops: int) -> caffe2_pb2.NetDef:
    ops = [caffe2_pb2.OperatorDef(type="Add", input=[f"y{i}", "one"], output=[f"y{i + 1}"]) for i in range(n_ops)]
    return caffe2_pb2.NetDef(name="chain", op=ops, external_input=["y0", "one"], external_output=[f"y{n_ops}"])


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)

    ws = Workspace("bench")
    ws.FeedBlob("y0", torch.zeros(1))
    ws.FeedBlob("one", torch.ones(1))
    ws.CreateNet(build_chain(args.ops))
    ws.RunNet("chain")
    assert ws.FetchBlob(f"y{args.ops}").item() == args.ops

    y0, one = torch.zeros(1), torch.ones(1)

    def eager() -> None:
        y = y0
        for _ in range(args.ops):
            y = torch.add(y, one)

    t_net = best_of(lambda: ws.RunNet("chain"), args.repeats)
    t_eager = best_of(eager, args.repeats)
    per_op_us = (t_net - t_eager) / args.ops * 1e6
    print(f"ops={args.ops}  RunNet {t_net * 1e3:.2f} ms  torch loop {t_eager * 1e3:.2f} ms")
    print(f"executor overhead: {per_op_us:.2f} us/op  (RunNet / torch = {t_net / t_eager:.2f}x; target < 20 us/op)")


if __name__ == "__main__":
    main()
