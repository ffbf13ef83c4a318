"""Caffe2 export of mask_rcnn_R_50_FPN_3x: export time, and per-image latency eager vs exported.

Weights: the deterministic random init of tests/export/test_caffe2_export_models.py (gives
detections; no trained R50 checkpoint is needed). Input: a bundled shapes image resized to
800x1216 (a multiple of 32: no padding). Prints, side by side:

* export time: ``Caffe2Tracer(...).export_caffe2()`` (target <= 60 s);
* latency per image (best of ``--repeats`` runs after a warm-up): eager ``model(inputs)`` and
  ``model.inference(inputs, do_postprocess=False)``, the exported net on ``(data, im_info)`` with
  ``ProtobufModel``, and ``Caffe2Model.__call__`` (pre/post-processing included), with the ratios
  exported / eager (target: exported no slower than eager).

Latency is measured twice, because glibc's heap state changes it by up to 30%: a model run after
another one in the same process (or after the export) reuses memory the first left mapped and
page-faults less. "same process" alternates eager and exported runs after the export, so both see
that warm heap; "fresh process" runs each variant alone in a new interpreter (the deployment case:
eager from the saved state_dict, exported from the saved model.pb / model_init.pb).

Run from the repository root: ``python3 benchmarks/caffe2_export.py [--threads N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

import torch

from common import alternating_times, build_cfg, build_model_giving_detections, sample_input

from detectron2_export.caffe2.protobuf_model import ProtobufModel
from detectron2_export.export import Caffe2Model, Caffe2Tracer
from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
from detectron2_export.export.protobuf_utils import get_pb_arg_vali
from detectron2_export.modeling import build_model


VARIANTS = {
    "eager": "eager model(inputs)",
    "eager_raw": "eager inference(do_postprocess=False)",
    "protobuf": "exported ProtobufModel(data, im_info)",
    "caffe2": "exported Caffe2Model(inputs)",
}
BASELINE = {"protobuf": "eager_raw", "caffe2": "eager"}
"""exported variant -> the eager variant it is compared with (same outputs: raw or post-processed)."""


def best_seconds(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best of ``repeats`` runs of each function after one warm-up each, the functions alternating."""
    return {name: min(t.wall for t in times) for name, times in alternating_times(fns, repeats).items()}


def variant_fns(names: list[str], model, c2_model: Caffe2Model | None, inputs: list[dict]) -> dict[str, Callable]:
    fns: dict[str, Callable] = {}
    if "eager" in names:
        fns["eager"] = lambda: model(inputs)
    if "eager_raw" in names:
        fns["eager_raw"] = lambda: model.inference(inputs, do_postprocess=False)
    if "protobuf" in names:
        protobuf_model = ProtobufModel(c2_model.predict_net, c2_model.init_net)
        size_divisibility = get_pb_arg_vali(c2_model.predict_net, "size_divisibility", 0)
        c2_inputs = convert_batched_inputs_to_c2_format(inputs, size_divisibility, "cpu")
        fns["protobuf"] = lambda: protobuf_model(c2_inputs)
    if "caffe2" in names:
        fns["caffe2"] = lambda: c2_model(inputs)
    return fns


def run_child(args: argparse.Namespace) -> None:
    """Measure one variant in this fresh process; print its seconds as the last line."""
    inputs = sample_input(*args.size)
    model = c2_model = None
    if args.child.startswith("eager"):
        model = build_model(build_cfg()).eval()
        model.load_state_dict(torch.load(os.path.join(args.work_dir, "model.pth")))
    else:
        c2_model = Caffe2Model.load_protobuf(args.work_dir)
    with torch.no_grad():
        seconds = best_seconds(variant_fns([args.child], model, c2_model, inputs), args.repeats)
    print(seconds[args.child])


def fresh_process_seconds(args: argparse.Namespace, work_dir: str) -> dict[str, float]:
    seconds = {}
    for name in VARIANTS:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--work-dir", work_dir,
               "--threads", str(args.threads), "--repeats", str(args.repeats), "--size", *map(str, args.size)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"measuring {name!r} in a fresh process failed ({' '.join(cmd)}):\n{proc.stderr[-3000:]}")
        seconds[name] = float(proc.stdout.strip().splitlines()[-1])
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    parser.add_argument("--child", choices=list(VARIANTS), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.child:
        run_child(args)
        return

    cfg = build_cfg()
    inputs = sample_input(*args.size)
    model = build_model_giving_detections(cfg, inputs)

    start = time.perf_counter()
    c2_model = Caffe2Tracer(cfg, model, inputs).export_caffe2()
    export_s = time.perf_counter() - start

    with torch.no_grad():
        num_detections = len(model(inputs)[0]["instances"])
        same = best_seconds(variant_fns(list(VARIANTS), model, c2_model, inputs), args.repeats)
    c2_detections = len(c2_model(inputs)[0]["instances"])
    with tempfile.TemporaryDirectory() as work_dir:
        torch.save(model.state_dict(), os.path.join(work_dir, "model.pth"))
        c2_model.save_protobuf(work_dir)
        fresh = fresh_process_seconds(args, work_dir)

    h, w = args.size
    print(f"mask_rcnn_R_50_FPN_3x, CPU, {args.threads} threads, input {h}x{w}, "
          f"{num_detections} eager / {c2_detections} exported detections, best of {args.repeats}")
    print(f"export time (Caffe2Tracer.export_caffe2): {export_s:8.2f} s   (target <= 60 s)")
    print(f"{'per image, seconds':<40}{'same process':>14}{'ratio':>8}{'fresh process':>16}{'ratio':>8}")
    for name, label in VARIANTS.items():
        row = f"{label:<40}"
        for seconds, width in ((same, 14), (fresh, 16)):
            ratio = f"{seconds[name] / seconds[BASELINE[name]]:.2f}x" if name in BASELINE else ""
            row += f"{seconds[name]:>{width}.3f}{ratio:>8}"
        print(row)
    print("ratio: exported / eager on the same outputs (target <= 1.00x)")


if __name__ == "__main__":
    main()
