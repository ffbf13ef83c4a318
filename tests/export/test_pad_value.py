"""Padding of ``data`` with the pixel mean: the Caffe2-compatible model then sees exactly what eager
detectron2 sees (it normalises first and pads with zeros), on an image that needs padding."""

import os

import pytest
import torch

from detectron2_export.checkpoint import DetectionCheckpointer
from detectron2_export.config import get_cfg
from detectron2_export.data import detection_utils
from detectron2_export.export import Caffe2Tracer
from detectron2_export.export.caffe2_modeling import convert_batched_inputs_to_c2_format
from detectron2_export.modeling import build_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_padding_is_filled_per_channel():
    image = torch.full((3, 5, 7), 9.0)
    data, im_info = convert_batched_inputs_to_c2_format([{"image": image}], 4, "cpu", [1.0, 2.0, 3.0])
    assert data.shape == (1, 3, 8, 8)
    assert torch.equal(data[0, :, :5, :7], image)
    for c, v in enumerate([1.0, 2.0, 3.0]):
        assert torch.all(data[0, c, 5:, :] == v) and torch.all(data[0, c, :, 7:] == v)
    assert im_info.tolist() == [[5.0, 7.0, 1.0]]
    zero_padded, _ = convert_batched_inputs_to_c2_format([{"image": image}], 4, "cpu")
    assert zero_padded[0, :, 5:, :].abs().sum() == 0


@pytest.mark.slow
def test_mean_padding_reproduces_eager_detections():
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(REPO, "configs/shapes/mask_rcnn_R_18_FPN_shapes.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    model = build_model(cfg).eval()
    DetectionCheckpointer(model).load(os.path.join(REPO, "models/mask_rcnn_R_18_FPN_shapes.pkl"))
    bgr = detection_utils.read_image(os.path.join(REPO, "datasets/shapes/val/00003.jpg"), format="BGR")
    image = torch.as_tensor(bgr[:270, :300].astype("float32").transpose(2, 0, 1))  # pads to 288x320
    inputs = [{"image": image}]

    tracer = Caffe2Tracer(cfg, model, inputs)
    data, im_info = tracer.traceable_inputs
    assert data.shape[-2:] == (288, 320)
    with torch.no_grad():
        eager = model.inference(inputs, do_postprocess=False)[0]
        boxes, scores, classes, _masks = tracer.traceable_model((data, im_info))
    assert len(eager) > 0 and len(scores) == len(eager)
    # same detections up to order (Caffe2 orders them class by class)
    order_e = torch.argsort(eager.scores, descending=True)
    order_c = torch.argsort(scores, descending=True)
    torch.testing.assert_close(scores[order_c], eager.scores[order_e], atol=1e-4, rtol=0)
    torch.testing.assert_close(boxes[order_c], eager.pred_boxes.tensor[order_e], atol=1e-2, rtol=0)
    assert torch.equal(classes[order_c].long(), eager.pred_classes[order_e])
