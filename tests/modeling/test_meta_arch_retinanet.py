"""RetinaNet: head layout and init, and inference vs a naive per-anchor re-formulation."""

import math

import pytest
import torch
from torch import nn
from torchvision.ops import batched_nms as tv_batched_nms

from detectron2_export.errors import ConfigError
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling import Backbone, RetinaNet, build_model
from detectron2_export.modeling.anchor_generator import DefaultAnchorGenerator
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.meta_arch.retinanet import RetinaNetHead, permute_to_N_HWA_K

from .stubs import shapes_of, upstream_keys, zoo_cfg

SIZES = [[16.0, 24.0], [32.0, 48.0]]
RATIOS = [[0.5, 1.0]]
STRIDES = [8, 16]
NUM_CLASSES = 3


class TwoLevelBackbone(Backbone):
    """Average-pools the image to strides 8 and 16 and lifts it to 8 channels with a fixed conv."""

    def __init__(self):
        super().__init__()
        self.lift = nn.Conv2d(3, 8, 1)
        self._out_features = ["c3", "c4"]
        self._out_feature_channels = {"c3": 8, "c4": 8}
        self._out_feature_strides = {"c3": 8, "c4": 16}

    @property
    def size_divisibility(self) -> int:
        return 16

    def forward(self, x):
        y = self.lift(x)
        return {"c3": nn.functional.avg_pool2d(y, 8), "c4": nn.functional.avg_pool2d(y, 16)}


def _retinanet(**kwargs) -> RetinaNet:
    torch.manual_seed(0)
    shapes = [ShapeSpec(channels=8, stride=s) for s in STRIDES]
    head = RetinaNetHead(input_shape=shapes, num_classes=NUM_CLASSES, num_anchors=4, conv_dims=[8, 8])
    for p in head.parameters():  # spread the scores so that thresholds and top-k matter
        p.data.normal_(0, 0.5)
    head.cls_score.weight.data *= 0.02  # unsaturated, distinct scores: no ties in top-k/NMS
    head.bbox_pred.weight.data *= 0.02  # moderate deltas: boxes stay near their anchors
    args = dict(
        backbone=TwoLevelBackbone(),
        head=head,
        head_in_features=["c3", "c4"],
        anchor_generator=DefaultAnchorGenerator(
            sizes=SIZES, aspect_ratios=RATIOS, strides=STRIDES, offset=0.0
        ),
        box2box_transform=Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0)),
        num_classes=NUM_CLASSES,
        test_score_thresh=0.3,
        test_topk_candidates=20,
        test_nms_thresh=0.5,
        max_detections_per_image=15,
        pixel_mean=(0.0, 0.0, 0.0),
        pixel_std=(1.0, 1.0, 1.0),
    )
    args.update(kwargs)
    return RetinaNet(**args).eval()


def _naive_inference(model: RetinaNet, image_size, logits, deltas):
    """Loop over every (y, x, anchor, class) in detectron2's order; no reshapes shared with the model."""
    boxes, scores, classes = [], [], []
    for level, (lg, dl) in enumerate(zip(logits, deltas)):
        stride, sizes = STRIDES[level], SIZES[level]
        _, _, H, W = lg.shape
        cand = []  # (score, box, class)
        for y in range(H):
            for x in range(W):
                a = 0
                for size in sizes:
                    for ratio in RATIOS[0]:
                        w = math.sqrt(size * size / ratio)
                        h = ratio * w
                        anchor = torch.tensor(
                            [x * stride - w / 2, y * stride - h / 2, x * stride + w / 2, y * stride + h / 2]
                        )
                        delta = dl[0, 4 * a : 4 * a + 4, y, x]
                        for k in range(NUM_CLASSES):
                            score = torch.sigmoid(lg[0, a * NUM_CLASSES + k, y, x]).item()
                            if score > model.test_score_thresh:
                                cand.append((score, anchor, delta, k))
                        a += 1
        cand.sort(key=lambda c: -c[0])
        for score, anchor, delta, k in cand[: model.test_topk_candidates]:
            aw, ah = anchor[2] - anchor[0], anchor[3] - anchor[1]
            cx, cy = anchor[0] + aw / 2 + delta[0] * aw, anchor[1] + ah / 2 + delta[1] * ah
            clamp = math.log(1000.0 / 16)
            w, h = aw * torch.exp(delta[2].clamp(max=clamp)), ah * torch.exp(delta[3].clamp(max=clamp))
            boxes.append(torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]))
            scores.append(score)
            classes.append(k)
    boxes, scores, classes = torch.stack(boxes), torch.tensor(scores), torch.tensor(classes)
    keep = tv_batched_nms(boxes, scores, classes, model.test_nms_thresh)[: model.max_detections_per_image]
    return boxes[keep], scores[keep], classes[keep]


def test_permute_to_N_HWA_K():
    # channel a*K + k at (y, x) becomes row (y*W + x)*A + a, column k
    N, A, K, H, W = 2, 3, 4, 2, 5
    t = torch.arange(N * A * K * H * W, dtype=torch.float32).reshape(N, A * K, H, W)
    out = permute_to_N_HWA_K(t, K)
    assert out.shape == (N, H * W * A, K)
    assert out[1, (1 * W + 3) * A + 2, 1] == t[1, 2 * K + 1, 1, 3]


def test_inference_matches_naive_reference():
    model = _retinanet()
    img = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 4
    with torch.no_grad():
        images = model.preprocess_image([{"image": img}])
        features = model.backbone(images.tensor)
        features = [features[f] for f in model.head_in_features]
        logits, deltas = model.head(features)
        expected = _naive_inference(model, images.image_sizes[0], logits, deltas)
        (result,) = model.forward_inference(images, features, [logits, deltas])
    assert 1 < len(result) <= model.max_detections_per_image
    torch.testing.assert_close(result.scores, expected[1])
    torch.testing.assert_close(result.pred_boxes.tensor, expected[0], rtol=1e-5, atol=1e-4)
    assert result.pred_classes.tolist() == expected[2].tolist()
    assert result.image_size == (64, 80)


def test_forward_rescales_each_image():
    model = _retinanet(max_detections_per_image=5)
    img = torch.rand(3, 64, 80, generator=torch.Generator().manual_seed(1)) * 4
    with torch.no_grad():
        raw = model.forward_inference(*_head_outputs(model, img))[0]
        out = model([{"image": img, "height": 128, "width": 160}, {"image": img[:, :48, :64]}])
    assert len(out) == 2
    scaled = out[0]["instances"]
    assert scaled.image_size == (128, 160) and len(raw) == 5
    expected = raw.pred_boxes.tensor * 2
    expected[:, 0::2] = expected[:, 0::2].clamp(0, 160)
    expected[:, 1::2] = expected[:, 1::2].clamp(0, 128)
    keep = (expected[:, 2] > expected[:, 0]) & (expected[:, 3] > expected[:, 1])
    torch.testing.assert_close(scaled.pred_boxes.tensor, expected[keep])
    assert out[1]["instances"].image_size == (48, 64)


def _head_outputs(model, img):
    images = model.preprocess_image([{"image": img}])
    features = model.backbone(images.tensor)
    features = [features[f] for f in model.head_in_features]
    return images, features, list(model.head(features))


def test_head_layout_and_prior_init():
    head = RetinaNetHead(
        input_shape=[ShapeSpec(channels=32)] * 2,
        num_classes=5,
        num_anchors=9,
        conv_dims=[32, 32],
        norm="GN",
        prior_prob=0.01,
    )
    assert [type(m).__name__ for m in head.cls_subnet] == ["Conv2d", "GroupNorm", "ReLU"] * 2
    assert head.cls_score.out_channels == 45 and head.bbox_pred.out_channels == 36
    torch.testing.assert_close(head.cls_score.bias, torch.full((45,), -math.log(99.0)))
    torch.testing.assert_close(head.bbox_pred.bias, torch.zeros(36))
    logits, deltas = head([torch.zeros(1, 32, 4, 4), torch.zeros(1, 32, 2, 2)])
    assert [t.shape for t in logits] == [(1, 45, 4, 4), (1, 45, 2, 2)]
    assert [t.shape for t in deltas] == [(1, 36, 4, 4), (1, 36, 2, 2)]
    with pytest.raises(ConfigError, match="NORM='BN'"):
        RetinaNetHead(
            input_shape=[ShapeSpec(channels=8)], num_classes=5, num_anchors=9, conv_dims=[8], norm="BN"
        )


def test_training_mode_is_rejected():
    model = _retinanet().train()
    with pytest.raises(NotImplementedError, match="training mode is not supported"):
        model([{"image": torch.zeros(3, 16, 16)}])


def test_build_from_zoo_config():
    cfg = zoo_cfg("COCO-Detection/retinanet_R_50_FPN_3x.yaml")
    model = build_model(cfg).eval()
    assert type(model) is RetinaNet
    assert shapes_of(model) == upstream_keys("retinanet_R_50_FPN_3x", "")
    assert model.head_in_features == ["p3", "p4", "p5", "p6", "p7"]
    assert (model.test_score_thresh, model.test_topk_candidates, model.test_nms_thresh) == (0.05, 1000, 0.5)
    assert model.max_detections_per_image == 100 and model.num_classes == 80
    assert model.box2box_transform.weights == (1.0, 1.0, 1.0, 1.0)
    with torch.no_grad():
        out = model([{"image": torch.rand(3, 60, 70) * 255}])
    assert out[0]["instances"].image_size == (60, 70)
