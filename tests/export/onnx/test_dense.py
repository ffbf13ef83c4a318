"""``dense.dense_detections``: RetinaNet and FCOS post-processing of a whole batch in the graph,
against detectron2's ``forward_inference`` (per-level threshold, top-k, decode, class-wise NMS)."""

from typing import Callable, Dict, List

import pytest
import torch
from torch import nn

from detectron2_export.export.onnx.dense import dense_detections
from detectron2_export.export.onnx.isolation import BatchIsolation
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.meta_arch.fcos import FCOS, FCOSHead
from detectron2_export.modeling.meta_arch.retinanet import RetinaNet, RetinaNetHead
from detectron2_export.structures import Instances

from .helpers import OnnxFunction, dynamic, image_list, level_features

STRIDES = [8, 16, 32]
NEG_INF = float("-inf")


HEAD_IN_FEATURES = ["p3", "p4", "p5"]
DETECTOR_ARGS = dict(
    head_in_features=HEAD_IN_FEATURES, num_classes=3, test_topk_candidates=20, max_detections_per_image=15,
    pixel_mean=[0.0] * 3, pixel_std=[1.0] * 3,
)


def _spread(head: nn.Module) -> nn.Module:
    """Head weights large enough for candidates above the score threshold."""
    torch.manual_seed(0)
    for conv in head.modules():
        if isinstance(conv, nn.Conv2d):
            nn.init.normal_(conv.weight, std=0.25)
            nn.init.uniform_(conv.bias, -0.5, 0.5)
    return head


def _retinanet() -> RetinaNet:
    """Three levels, 3 anchors per location, 3 classes."""
    head = _spread(RetinaNetHead(input_shape=[ShapeSpec(channels=4)] * 3, num_classes=3, num_anchors=3, conv_dims=[4]))
    return RetinaNet(
        backbone=nn.Identity(), head=head,
        anchor_generator=DefaultAnchorGenerator(sizes=[[16], [32], [64]], aspect_ratios=[[0.5, 1.0, 2.0]], strides=STRIDES),
        box2box_transform=Box2BoxTransform((1.0, 1.0, 1.0, 1.0)), test_score_thresh=0.3, test_nms_thresh=0.5, **DETECTOR_ARGS,
    ).eval()


class _Levels(nn.Module):
    """Stands for an FPN backbone: FCOS reads only the strides of ``output_shape``."""

    def output_shape(self) -> Dict[str, ShapeSpec]:
        return {name: ShapeSpec(channels=4, stride=s) for name, s in zip(HEAD_IN_FEATURES, STRIDES)}


def _fcos() -> FCOS:
    """One anchor point per location, centerness branch, linear box regression by stride."""
    head = _spread(FCOSHead(input_shape=[ShapeSpec(channels=4)] * 3, conv_dims=[4], num_classes=3))
    return FCOS(backbone=_Levels(), head=head, test_score_thresh=0.2, test_nms_thresh=0.6, **DETECTOR_ARGS).eval()


DETECTORS: Dict[str, Callable[[], nn.Module]] = {"retinanet": _retinanet, "fcos": _fcos}


def _features(n: int, height: int, width: int, seed: int) -> List[torch.Tensor]:
    return level_features(n, 4, height, width, STRIDES, seed)


def _reference(model: nn.Module, features: List[torch.Tensor], image_sizes: List[List[int]]) -> List[Instances]:
    with torch.no_grad():
        return model.forward_inference(image_list(image_sizes), features, list(model.head(features)))


def _assert_matches(outputs, expected: Instances, i: int, box_atol: float = 1e-4, score_atol: float = 1e-6) -> None:
    """Image i: the reference's detections first, in its order, then -inf padding. onnxruntime's
    convolutions round differently from torch's: hence the looser tolerances of the exported head."""
    boxes, scores, classes = (torch.as_tensor(x) for x in outputs)
    m = len(expected)
    assert m > 0, f"image {i}: the case should have detections"
    gaps = expected.scores[:-1] - expected.scores[1:]
    assert (gaps > 10 * score_atol).all(), f"image {i}: scores closer than the tolerance, the order is not defined"
    torch.testing.assert_close(boxes[i, :m], expected.pred_boxes.tensor, rtol=0, atol=box_atol)
    torch.testing.assert_close(scores[i, :m], expected.scores, rtol=0, atol=score_atol)
    assert classes[i, :m].tolist() == expected.pred_classes.tolist(), f"image {i}"
    assert (scores[i, m:] == NEG_INF).all()


@pytest.mark.parametrize("detector", DETECTORS)
def test_torch_equals_forward_inference_on_a_batch_of_full_size_images(detector):
    model = DETECTORS[detector]()
    features = _features(2, 96, 64, seed=0)
    with torch.no_grad():
        outputs = dense_detections(model, features, torch.tensor([[96, 64], [96, 64]]))
    for i, expected in enumerate(_reference(model, features, [[96, 64], [96, 64]])):
        _assert_matches(outputs, expected, i)


@pytest.mark.parametrize("detector", DETECTORS)
def test_a_smaller_image_of_a_batch_gets_its_single_image_detections(detector):
    """Anchors beyond an image's own extent are ignored, and with the head isolated (as the lowered
    model does) the smaller image's detections are those of its features alone."""
    model = DETECTORS[detector]()
    isolation = BatchIsolation([model.head])
    sizes = [[96, 64], [64, 32]]
    features = _features(2, 96, 64, seed=1)
    padded = torch.tensor(sizes)
    isolation.set_sizes(padded, torch.zeros(2, 3, 96, 64))
    with torch.no_grad():
        outputs = dense_detections(model, features, padded)
    for i, (h, w) in enumerate(sizes):
        alone = [f[i : i + 1, :, : -(-h // s), : -(-w // s)] for f, s in zip(features, STRIDES)]
        isolation.set_sizes(padded[i : i + 1], torch.zeros(1, 3, h, w))
        # the head's convolutions on the cropped maps round differently (boxes of ~100 pixels)
        _assert_matches(outputs, _reference(model, alone, [[h, w]])[0], i, box_atol=1e-3, score_atol=1e-6)


class Dense(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, p3, p4, p5, padded_sizes):
        return dense_detections(self.model, [p3, p4, p5], padded_sizes)


@pytest.mark.parametrize("detector", DETECTORS)
def test_onnx_equals_forward_inference_on_other_shapes(detector):
    model = DETECTORS[detector]()
    names = ["p3", "p4", "p5", "padded_sizes", "boxes", "scores", "classes"]
    fn = OnnxFunction(
        Dense(model), [*_features(2, 64, 64, seed=2), torch.tensor([[64, 64], [64, 64]])], names[:4], names[4:],
        dynamic(names, [0, 2, 3], [0, 2, 3], [0, 2, 3], [0], [0, 1], [0, 1], [0, 1]),
    )
    for n, h, w in [(3, 128, 96), (1, 32, 160)]:
        features = _features(n, h, w, seed=h)
        outputs = fn(*features, torch.tensor([[h, w]] * n))
        for i, expected in enumerate(_reference(model, features, [[h, w]] * n)):
            _assert_matches(outputs, expected, i, box_atol=1e-3, score_atol=1e-6)
