"""Caffe2 export time and peak memory of models with large weights.

faster_rcnn_R_50_DC5_3x's first box-head FC has a 100352x1024 weight (103M floats, 411 MB); every
copy of it in the export pipeline costs time and memory. mask_rcnn_R_50_FPN_3x is the reference
for ordinary weights. Each model is built and exported in a fresh process, so the peak resident
memory is that of one export: after the model is built and given weights (the deterministic
random init of tests/export/test_caffe2_export_models.py, which gives detections), the peak is
reset and ``Caffe2Tracer(cfg, model, inputs).export_caffe2()`` is timed, with a breakdown into ONNX
export, ONNX -> Caffe2 conversion and graph passes.

Input: the first shapes val image at the model-level tests' size (shortest edge 256) with 100
proposals: the export's cost is in the weights, not in the one traced forward pass.

Run from the repository root: ``python3 benchmarks/export_large_weights.py [--models NAME ...]``.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import resource
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

MODELS = ["COCO-Detection/faster_rcnn_R_50_DC5_3x", "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x"]
STAGES = {"export_onnx_model": "ONNX export", "onnx_graph_to_caffe2_net": "conversion", "run_passes": "passes"}


def _proc_status_bytes(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            return int(f.read().split(key + ":")[1].split()[0]) * 1024
    except (OSError, IndexError):
        return None


def _reset_peak() -> bool:
    """Restart the kernel's peak-RSS counter (VmHWM) from the current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    hwm = _proc_status_bytes("VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _build(config_name: str):
    import torch

    from detectron2_export.data import DatasetCatalog
    from detectron2_export.data.dataset_mapper import DatasetMapper
    from detectron2_export.export import add_export_config
    from detectron2_export.model_zoo import get_config
    from detectron2_export.modeling import build_model
    from tests.export.test_caffe2_export_models import init_weights_giving_detections

    cfg = add_export_config(get_config(config_name + ".yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 256, 384
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = 100
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = [{"image": DatasetMapper(cfg, is_train=False)(DatasetCatalog.get("shapes_val")[0])["image"]}]
    init_weights_giving_detections(model, inputs)
    return cfg, model, inputs


def _timed_stages(seconds: dict[str, float]) -> None:
    """Record the seconds of each pipeline stage called by ``export_caffe2_detection_model``."""
    from detectron2_export.export import caffe2_export

    def timed(fn, label):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[label] = seconds.get(label, 0.0) + time.perf_counter() - start

        return wrapper

    for name, label in STAGES.items():
        setattr(caffe2_export, name, timed(getattr(caffe2_export, name), label))


def run_child(config_name: str) -> None:
    """Export ``config_name`` in this process; print one JSON line of measurements."""
    import torch

    from detectron2_export.export import Caffe2Tracer

    torch.set_num_threads(1)
    cfg, model, inputs = _build(config_name)
    stage_seconds: dict[str, float] = {}
    _timed_stages(stage_seconds)
    exact_peak = _reset_peak()
    before = _proc_status_bytes("VmRSS")
    start = time.perf_counter()
    c2_model = Caffe2Tracer(cfg, model, inputs).export_caffe2()
    seconds = time.perf_counter() - start
    n_weights = sum(len(arg.floats) for op in c2_model.init_net.op for arg in op.arg if arg.name == "values")
    result = {"seconds": seconds, "stages": stage_seconds, "peak_rss": _peak_rss_bytes(), "rss_before": before}
    print(json.dumps({**result, "exact_peak": exact_peak, "n_weights": n_weights}))


def _load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=MODELS, metavar="NAME", help="model-zoo config names")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.child:
        run_child(args.child)
        return

    gb = 1024**3
    columns = ["weights", "export s", "onnx s", "conv s", "passes s", "RSS before", "peak RSS", "peak - before"]
    print(f"load average before: {_load_average()} (1, 5, 15 min), {os.cpu_count()} CPUs; 1 torch thread")
    print(f"{'model':<26}" + "".join(f"{c:>14}" for c in columns))
    for name in args.models:
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
        before = r["rss_before"] / gb if r["rss_before"] is not None else float("nan")
        peak = r["peak_rss"] / gb
        cells = [f"{r['n_weights'] / 1e6:.1f}M", f"{r['seconds']:.2f}"]
        cells += [f"{r['stages'].get(label, float('nan')):.2f}" for label in STAGES.values()]
        cells += [f"{before:.2f} GB", f"{peak:.2f} GB", f"{peak - before:.2f} GB"]
        note = "" if r["exact_peak"] else "  (peak of the whole process: ru_maxrss)"
        print(f"{name.split('/')[1]:<26}" + "".join(f"{c:>14}" for c in cells) + note)
    print(f"load average after: {_load_average()}")


if __name__ == "__main__":
    main()
