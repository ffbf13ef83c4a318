"""COCO evaluation time: pycocotools' COCOeval vs COCOeval_opt (faster-coco-eval), side by side.

Both evaluate the same results on the bundled shapes val set (200 images): two jittered copies of
every ground truth plus three random boxes per image (``perturbed_predictions`` of the tests),
repeated ``--times``-fold. Each run is loadRes +
evaluate + accumulate + summarize, alternating the two implementations; the median is printed with
the AP of both (they must agree).

    python3 benchmarks/coco_eval_speed.py [--repeat 5] [--times 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from pycocotools.coco import COCO  # noqa: E402
from pycocotools.cocoeval import COCOeval  # noqa: E402

from detectron2_export.evaluation.fast_eval_api import COCOeval_opt  # noqa: E402
from tests.data.helpers import SHAPES_JSON, load_shapes_json  # noqa: E402
from tests.evaluation.test_fast_eval_api import perturbed_predictions, run_cocoeval  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per implementation")
    parser.add_argument("--times", type=int, default=1, help="copies of the result set (more detections per image)")
    args = parser.parse_args()

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(SHAPES_JSON)
    results = []
    for seed in range(args.times):
        results += perturbed_predictions(load_shapes_json(), seed=seed)
    print(f"shapes val: {len(coco_gt.getImgIds())} images, {len(coco_gt.getAnnIds())} objects, "
          f"{len(results)} detections; median of {args.repeat} runs (loadRes + evaluate + accumulate + summarize)")
    print("| iou type | pycocotools | COCOeval_opt | ratio | AP pycocotools | AP fast |")
    print("|---|---|---|---|---|---|")
    for iou_type in ("bbox", "segm", "keypoints"):
        times: dict[type, list[float]] = {COCOeval: [], COCOeval_opt: []}
        ap = {}
        for _ in range(args.repeat):
            for cls in times:
                start = time.perf_counter()
                ap[cls] = run_cocoeval(cls, coco_gt, results, iou_type).stats[0] * 100
                times[cls].append(time.perf_counter() - start)
        slow, fast = statistics.median(times[COCOeval]), statistics.median(times[COCOeval_opt])
        print(f"| {iou_type} | {slow:.3f} s | {fast:.3f} s | {fast / slow:.2f}x "
              f"| {ap[COCOeval]:.4f} | {ap[COCOeval_opt]:.4f} |")


if __name__ == "__main__":
    main()
