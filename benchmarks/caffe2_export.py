"""Caffe2 export of mask_rcnn_R_50_FPN_3x: export time, and per-image latency eager vs exported.

Weights: the deterministic random init of tests/export/test_caffe2_export_models.py (gives
detections; no trained R50 checkpoint is needed). Input: a bundled shapes image resized to
800x1216 (a multiple of 32: no padding). Prints, side by side:

* export time: ``Caffe2Tracer(...).export_caffe2()`` (target <= 60 s);
* latency per image (best of ``--repeats`` runs after a warm-up: on a shared machine the minimum is
  the least disturbed measurement): eager ``model(inputs)`` and
  ``model.inference(inputs, do_postprocess=False)``, the exported net on ``(data, im_info)`` with
  ``ProtobufModel``, and ``Caffe2Model.__call__`` (pre/post-processing included), with the ratios
  exported / eager (target: exported no slower than eager).

Run from the repository root: ``python3 benchmarks/caffe2_export.py [--threads N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from detectron2_export.caffe2.protobuf_model import ProtobufModel  # noqa: E402
from detectron2_export.data import DatasetCatalog  # noqa: E402
from detectron2_export.data.detection_utils import read_image  # noqa: E402
from detectron2_export.export import Caffe2Tracer, add_export_config  # noqa: E402
from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format  # noqa: E402
from detectron2_export.model_zoo import get_config  # noqa: E402
from detectron2_export.modeling import build_model  # noqa: E402
from tests.export.test_caffe2_export_models import init_weights_giving_detections  # noqa: E402

CONFIG = "COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml"


def sample_input(height: int, width: int) -> list[dict]:
    """A bundled shapes image (BGR, as the model expects) resized to ``height`` x ``width``."""
    record = DatasetCatalog.get("shapes_val")[1]
    image = torch.from_numpy(read_image(record["file_name"], format="BGR").copy()).permute(2, 0, 1).float()
    image = F.interpolate(image[None], size=(height, width), mode="bilinear", align_corners=False)[0]
    return [{"image": image}]


def best_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, nargs=2, default=(800, 1216), metavar=("H", "W"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)

    cfg = add_export_config(get_config(CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    inputs = sample_input(*args.size)
    init_weights_giving_detections(model, inputs)

    start = time.perf_counter()
    c2_model = Caffe2Tracer(cfg, model, inputs).export_caffe2()
    export_s = time.perf_counter() - start

    c2_inputs = convert_batched_inputs_to_c2_format(inputs, model.backbone.size_divisibility, "cpu")
    protobuf_model = ProtobufModel(c2_model.predict_net, c2_model.init_net)
    with torch.no_grad():
        num_detections = len(model(inputs)[0]["instances"])
        eager_s = best_seconds(lambda: model(inputs), args.repeats)
        eager_raw_s = best_seconds(lambda: model.inference(inputs, do_postprocess=False), args.repeats)
        protobuf_s = best_seconds(lambda: protobuf_model(c2_inputs), args.repeats)
        c2_call_s = best_seconds(lambda: c2_model(inputs), args.repeats)
    c2_detections = len(c2_model(inputs)[0]["instances"])

    h, w = args.size
    print(f"mask_rcnn_R_50_FPN_3x, CPU, {args.threads} threads, input {h}x{w}, "
          f"{num_detections} eager / {c2_detections} exported detections, best of {args.repeats}")
    print(f"export time (Caffe2Tracer.export_caffe2): {export_s:8.2f} s   (target <= 60 s)")
    print(f"{'per image':<44}{'seconds':>10}{'exported/eager':>16}")
    print(f"{'eager model(inputs)':<44}{eager_s:>10.3f}")
    print(f"{'eager inference(do_postprocess=False)':<44}{eager_raw_s:>10.3f}")
    print(f"{'exported ProtobufModel(data, im_info)':<44}{protobuf_s:>10.3f}{protobuf_s / eager_raw_s:>15.2f}x")
    print(f"{'exported Caffe2Model(inputs)':<44}{c2_call_s:>10.3f}{c2_call_s / eager_s:>15.2f}x")


if __name__ == "__main__":
    main()
