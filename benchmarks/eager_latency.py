"""Eager (PyTorch) latency of detectron2 models on this machine, for issue 3's yardstick.

Prints per-image latency of mask_rcnn_R_50_FPN_3x (random weights; latency does not depend on
them beyond the number of detections, which the box head caps) at 800x1216, and of the bundled
shapes Mask R-CNN at its own test size, side by side.

    python benchmarks/eager_latency.py [--iters 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from detectron2_export.config import get_cfg
from detectron2_export.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(config: str, opts: list[str]) -> torch.nn.Module:
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, config))
    cfg.merge_from_list(["MODEL.DEVICE", "cpu", *opts])
    torch.manual_seed(0)
    return build_model(cfg).eval()


def time_model(model: torch.nn.Module, height: int, width: int, iters: int) -> float:
    image = torch.rand(3, height, width) * 255
    inputs = [{"image": image, "height": height, "width": width}]
    with torch.no_grad():
        model(inputs)  # warm-up
        times = []
        for _ in range(iters):
            start = time.perf_counter()
            model(inputs)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    rows = [
        ("mask_rcnn_R_50_FPN_3x", "configs/COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml", [], 800, 1216),
        ("shapes mask_rcnn_R_18_FPN", "configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml", [], 288, 384),
    ]
    results = []
    for name, config, opts, h, w in rows:
        seconds = time_model(build(config, opts), h, w, args.iters)
        results.append(seconds)
        print(f"{name:<28} {h}x{w}: {seconds * 1000:8.1f} ms/image (median of {args.iters})")
    print(f"ratio R50-FPN@800x1216 / shapes R18-FPN@288x384: {results[0] / results[1]:.1f}x")


if __name__ == "__main__":
    main()
