"""What the export benchmarks share: the model (mask_rcnn_R_50_FPN_3x with the deterministic random
init of tests/export/test_caffe2_export_models.py, which gives detections without a trained
checkpoint), its input (a bundled shapes image resized to a given size) and the alternating timer.

Importing this module puts the repository root on ``sys.path`` (the benchmarks run as scripts).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from detectron2_export.data import DatasetCatalog  # noqa: E402
from detectron2_export.data.detection_utils import read_image  # noqa: E402
from detectron2_export.export import add_export_config  # noqa: E402
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


def build_cfg():
    """The model-zoo config on CPU, with the export keys added."""
    cfg = add_export_config(get_config(CONFIG))
    cfg.MODEL.DEVICE = "cpu"
    return cfg


def build_model_giving_detections(cfg, inputs: list[dict]) -> torch.nn.Module:
    """The model in eval mode, seeded and initialised so that ``inputs`` give detections."""
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    init_weights_giving_detections(model, inputs)
    return model


def setup(threads: int, size: tuple[int, int]) -> tuple[object, list[dict], torch.nn.Module]:
    """What every benchmark starts with: warnings-only logging, ``threads`` torch threads, and
    (cfg, input at ``size``, model giving detections on it)."""
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(threads)
    cfg = build_cfg()
    inputs = sample_input(*size)
    return cfg, inputs, build_model_giving_detections(cfg, inputs)


class RunClock:
    """Wall time and load average since the benchmark started, for its last line."""

    def __init__(self) -> None:
        self.load, self.start = os.getloadavg()[0], time.perf_counter()

    def summary(self) -> str:
        return (f"total {time.perf_counter() - self.start:.0f} s; load average {self.load:.2f} at start, "
                f"{os.getloadavg()[0]:.2f} at end ({os.cpu_count()} CPUs)")


class Timing(NamedTuple):
    """One timed call: wall-clock seconds, and CPU seconds of the whole process (all threads),
    which a loaded shared machine inflates less than the wall clock."""

    wall: float
    cpu: float


def alternating_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[Timing]]:
    """``repeats`` timings of each function after one warm-up each, the functions alternating, so
    that the machine's load drifts over all of them alike."""
    for fn in fns.values():
        fn()
    times: dict[str, list[Timing]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append(Timing(time.perf_counter() - wall, time.process_time() - cpu))
    return times
