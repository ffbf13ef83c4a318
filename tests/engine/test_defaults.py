"""DefaultPredictor: config -> model + weights; BGR uint8 image -> detectron2 outputs.

Needs detectron2_export.modeling and detectron2_export.data.transforms (skipped until they exist).
"""

import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("detectron2_export.modeling")
pytest.importorskip("detectron2_export.data.transforms")

from detectron2_export.config import get_cfg  # noqa: E402
from detectron2_export.engine import DefaultPredictor  # noqa: E402
from detectron2_export.errors import ConfigError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_CFG = os.path.join(ROOT, "configs", "shapes", "mask_rcnn_R_18_FPN_shapes.yaml")
SHAPES_PKL = os.path.join(ROOT, "models", "mask_rcnn_R_18_FPN_shapes.pkl")
SHAPES_VAL = os.path.join(ROOT, "datasets", "shapes")


def shapes_cfg(weights=""):
    cfg = get_cfg()
    cfg.merge_from_file(SHAPES_CFG)
    cfg.merge_from_list(["MODEL.WEIGHTS", weights, "MODEL.DEVICE", "cpu"])
    return cfg


def expected_test_size(h, w, short, max_size):
    """detectron2's ResizeShortestEdge.get_output_shape, written out."""
    scale = short / min(h, w)
    newh, neww = (short, scale * w) if h < w else (scale * h, short)
    if max(newh, neww) > max_size:
        rescale = max_size / max(newh, neww)
        newh, neww = newh * rescale, neww * rescale
    return int(newh + 0.5), int(neww + 0.5)


class _Recorder(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inputs = None

    def forward(self, batched_inputs):
        self.inputs = batched_inputs
        return [{"recorded": True}]


@pytest.mark.parametrize("fmt,expected_channels", [("BGR", [10.0, 20.0, 30.0]), ("RGB", [30.0, 20.0, 10.0])])
def test_preprocessing_resize_and_channel_order(fmt, expected_channels):
    cfg = shapes_cfg()
    cfg.INPUT.FORMAT = fmt
    predictor = DefaultPredictor(cfg)
    predictor.model = _Recorder()
    image = np.empty((374, 281, 3), np.uint8)
    image[...] = (10, 20, 30)  # B, G, R
    out = predictor(image)
    assert out == {"recorded": True}
    (inputs,) = predictor.model.inputs
    assert (inputs["height"], inputs["width"]) == (374, 281)
    h, w = expected_test_size(374, 281, 288, 384)
    assert (h, w) == (383, 288)
    assert inputs["image"].dtype == torch.float32 and tuple(inputs["image"].shape) == (3, h, w)
    assert inputs["image"].mean(dim=(1, 2)).tolist() == expected_channels


def test_rejects_unknown_input_format():
    cfg = shapes_cfg()
    cfg.INPUT.FORMAT = "YUV"
    with pytest.raises(ConfigError, match="INPUT.FORMAT='YUV'"):
        DefaultPredictor(cfg)


def _iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.slow
def test_bundled_shapes_model_finds_the_shapes():
    from PIL import Image

    with open(os.path.join(SHAPES_VAL, "val.json")) as f:
        coco = json.load(f)
    info = coco["images"][0]
    gts = [(a["bbox"], a["category_id"] - 1) for a in coco["annotations"] if a["image_id"] == info["id"]]
    bgr = np.asarray(Image.open(os.path.join(SHAPES_VAL, "val", info["file_name"])).convert("RGB"))[:, :, ::-1]

    predictor = DefaultPredictor(shapes_cfg(SHAPES_PKL))
    instances = predictor(np.ascontiguousarray(bgr))["instances"]
    assert instances.image_size == (info["height"], info["width"])
    assert instances.pred_masks.shape[1:] == (info["height"], info["width"])
    confident = instances[instances.scores > 0.5]
    boxes, classes = confident.pred_boxes.tensor.tolist(), confident.pred_classes.tolist()
    found = 0
    for (x, y, bw, bh), cls in gts:
        gt_box = (x, y, x + bw, y + bh)
        found += any(_iou(gt_box, b) > 0.5 and c == cls for b, c in zip(boxes, classes))
    # A sanity check of the whole pipeline, not an accuracy test (that is the COCO AP test): the
    # checkpoint (bbox AP 41 on this set) finds the circle and both triangles of this image; a wrong
    # channel order, resize or unloaded weights finds none.
    assert found >= 3, (found, len(gts))
