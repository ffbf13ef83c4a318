"""Standard-ONNX export of mask_rcnn_R_50_FPN_3x run by onnxruntime, against eager and Caffe2 (issue 12).

Model and input as ``benchmarks/caffe2_export.py`` (random weights giving 100 detections, a shapes
image resized to 800x1216). Prints, side by side in one process:

* export time of ``export_onnx`` (target <= 60 s), of ``Caffe2Tracer.export_caffe2`` and the
  session creation of ``OnnxRuntimeModel``;
* latency per image (median of ``--repeats`` calls after a warm-up, all variants alternating):
  eager ``model(inputs)``, ``Caffe2Model(inputs)`` and ``OnnxRuntimeModel(inputs)`` (CPU provider,
  ``intra_op_num_threads`` = ``--threads``) under graph optimisation levels ORT_ENABLE_ALL and
  ORT_ENABLE_EXTENDED, and ORT_ENABLE_ALL without thread-pool spinning; each with its ratio to
  eager (target: onnxruntime <= 0.5x eager). All of them return detectron2's outputs, masks pasted;
  wall-clock and process CPU seconds (all threads) are both printed, because this shared machine's
  load inflates the wall clock;
* throughput of a batch of 4 different-size images in one call, eager vs onnxruntime.

Run from the repository root: ``python3 benchmarks/onnx_runtime.py [--threads N] [--repeats R]``
(with the defaults, 637 s on the shared 2-core machine at a load average of 4 to 6).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import onnxruntime as ort
import torch

from common import RunClock, Timing, alternating_times, sample_input, setup

from detectron2_export.export import Caffe2Tracer, OnnxRuntimeModel, export_onnx

LEVELS = ort.GraphOptimizationLevel
ORT_VARIANTS = {
    "ort_all": ("OnnxRuntimeModel ORT_ENABLE_ALL", LEVELS.ORT_ENABLE_ALL, True),
    "ort_extended": ("OnnxRuntimeModel ORT_ENABLE_EXTENDED", LEVELS.ORT_ENABLE_EXTENDED, True),
    "ort_all_nospin": ("OnnxRuntimeModel ORT_ENABLE_ALL, no spinning", LEVELS.ORT_ENABLE_ALL, False),
}
"""name -> (label, graph optimisation level, whether idle pool threads spin)."""

BATCH_SIZES = ((800, 1216), (768, 1152), (736, 1216), (800, 1088))
TARGET_RATIO = 0.5


def session_options(threads: int, level: ort.GraphOptimizationLevel, spinning: bool) -> ort.SessionOptions:
    """CPU session options: ``threads`` intra-op threads (onnxruntime's default is one per core)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.graph_optimization_level = level
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def timed(fn: Callable[[], object]) -> tuple[object, Timing]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def median(times: list[Timing]) -> Timing:
    return Timing(statistics.median(t.wall for t in times), statistics.median(t.cpu for t in times))


def counting(fns: dict[str, Callable[[], list[dict]]], counts: dict[str, str]) -> dict[str, Callable[[], None]]:
    """``fns`` storing the detections per image of their latest call in ``counts`` (the timed
    calls' own outputs are checked, and not kept: pasted masks are 100 MB per image)."""

    def call(name: str, fn: Callable[[], list[dict]]) -> None:
        counts[name] = "/".join(str(len(out["instances"])) for out in fn())

    return {name: functools.partial(call, name, fn) for name, fn in fns.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant, per image")
    parser.add_argument("--batch-repeats", type=int, default=2, help="timed calls per variant, batch of 4")
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    args = parser.parse_args()
    clock = RunClock()
    cfg, inputs, model = setup(args.threads, tuple(args.size))
    onnx_model, onnx_export = timed(lambda: export_onnx(cfg, model, inputs))
    c2_model, c2_export = timed(lambda: Caffe2Tracer(cfg, model, inputs).export_caffe2())
    ort_models, ort_load = {}, {}
    for name, (_, level, spinning) in ORT_VARIANTS.items():
        options = session_options(args.threads, level, spinning)
        ort_models[name], ort_load[name] = timed(lambda: OnnxRuntimeModel(onnx_model, sess_options=options))
    batch = [sample_input(h, w)[0] for h, w in BATCH_SIZES]

    with torch.no_grad():
        fns: dict[str, Callable[[], list[dict]]] = {"eager": lambda: model(inputs), "caffe2": lambda: c2_model(inputs)}
        fns.update({name: (lambda m=m: m(inputs)) for name, m in ort_models.items()})
        detections: dict[str, str] = {}
        times = alternating_times(counting(fns, detections), args.repeats)
        per_image = {name: median(t) for name, t in times.items()}
        batch_fns = {"eager": lambda: model(batch), "ort_all": lambda: ort_models["ort_all"](batch)}
        batch_detections: dict[str, str] = {}
        times = alternating_times(counting(batch_fns, batch_detections), args.batch_repeats)
        per_batch = {name: median(t) for name, t in times.items()}

    labels = {"eager": "eager model(inputs)", "caffe2": "Caffe2Model(inputs)"}
    labels.update({name: label for name, (label, _, _) in ORT_VARIANTS.items()})
    h, w = args.size
    print(f"mask_rcnn_R_50_FPN_3x, CPU, {args.threads} threads, input {h}x{w}, onnxruntime {ort.__version__}, "
          f"torch {torch.__version__}")
    print("detections: " + ", ".join(f"{name} {n}" for name, n in detections.items()))
    print(f"export_onnx: {onnx_export.wall:.1f} s wall, {onnx_export.cpu:.1f} s CPU (target <= 60 s); "
          f"Caffe2Tracer.export_caffe2: {c2_export.wall:.1f} s wall; OnnxRuntimeModel session: "
          + ", ".join(f"{ort_load[name].wall:.1f} s" for name in ORT_VARIANTS))
    print(f"{f'per image, median of {args.repeats}':<48}{'wall s':>9}{'ratio':>8}{'CPU s':>9}{'ratio':>8}")
    base = per_image["eager"]
    for name, t in per_image.items():
        print(f"{labels[name]:<48}{t.wall:>9.3f}{t.wall / base.wall:>7.2f}x{t.cpu:>9.3f}{t.cpu / base.cpu:>7.2f}x")
    ort_ratio = min(per_image[name].wall for name in ORT_VARIANTS) / base.wall
    print(f"target: onnxruntime <= {TARGET_RATIO:.2f}x eager (wall): best {ort_ratio:.2f}x, "
          f"{'met' if ort_ratio <= TARGET_RATIO else 'NOT met'}")
    faster, slower = sorted(("ort_all", "ort_extended"), key=lambda name: per_image[name].wall)
    print(f"faster graph optimisation level: {labels[faster].split()[-1]} ({per_image[faster].wall:.3f} s "
          f"vs {per_image[slower].wall:.3f} s, {per_image[faster].wall / per_image[slower].wall:.2f}x)")

    sizes = " ".join(f"{h}x{w}" for h, w in BATCH_SIZES)
    print(f"batch of {len(BATCH_SIZES)} images in one call ({sizes}):")
    print(f"{f'per batch, median of {args.batch_repeats}':<48}{'wall s':>9}{'img/s':>8}{'x eager':>9}{'CPU s':>9}")
    for name, t in per_batch.items():
        print(f"{labels[name]:<48}{t.wall:>9.3f}{len(BATCH_SIZES) / t.wall:>8.3f}"
              f"{per_batch['eager'].wall / t.wall:>8.2f}x{t.cpu:>9.3f}")
    print("batch detections: " + ", ".join(f"{name} {n}" for name, n in batch_detections.items())
          + "; x eager: throughput / eager throughput")
    print(clock.summary())


if __name__ == "__main__":
    main()
