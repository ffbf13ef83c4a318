"""StandardROIHeads / Res5ROIHeads: upstream keys, inference wiring, registry, len patching."""

import contextlib
from unittest import mock

import pytest
import torch

from detectron2_export.errors import ConfigError, ModelInputError
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.roi_heads import (
    ROI_HEADS_REGISTRY,
    Res5ROIHeads,
    StandardROIHeads,
    build_roi_heads,
    fast_rcnn,
    keypoint_head,
    mask_head,
)
from detectron2_export.structures import Boxes, Instances

from .zoo import ZOO, built_shapes, expected_shapes, zoo_cfg, zoo_input_shape

IMAGE_SIZES = [(60, 64), (64, 50)]


@pytest.mark.parametrize("name", sorted(ZOO))
def test_state_dict_matches_upstream(name):
    got = built_shapes(build_roi_heads, zoo_cfg(name), zoo_input_shape(name))
    assert got == expected_shapes(name, "roi_heads.")


def test_unknown_name_lists_the_registered_heads():
    cfg = zoo_cfg("mask_rcnn_R_50_FPN_3x")
    cfg.MODEL.ROI_HEADS.NAME = "NoSuchROIHeads"
    with pytest.raises(KeyError, match="NoSuchROIHeads.*CascadeROIHeads.*Res5ROIHeads.*StandardROIHeads"):
        build_roi_heads(cfg, zoo_input_shape("mask_rcnn_R_50_FPN_3x"))
    assert "StandardROIHeads" in ROI_HEADS_REGISTRY and "Res5ROIHeads" in ROI_HEADS_REGISTRY


def _randomize(module):
    torch.manual_seed(0)
    for name, p in module.named_parameters():
        torch.nn.init.normal_(p, std=0.5 if "cls_score" in name else 0.1)
    return module.eval()


def _proposals(num=12):
    g = torch.Generator().manual_seed(1)
    out = []
    for h, w in IMAGE_SIZES:
        xy = torch.rand(num, 2, generator=g) * torch.tensor([w, h]) * 0.6
        wh = torch.rand(num, 2, generator=g) * 30 + 4
        boxes = torch.cat([xy, torch.minimum(xy + wh, torch.tensor([w, h]))], dim=1)
        logits = torch.zeros(num)
        out.append(Instances((h, w), proposal_boxes=Boxes(boxes), objectness_logits=logits))
    return out


def _fpn_heads(mask=True, keypoint=False):
    cfg = zoo_cfg("keypoint_rcnn_R_50_FPN_3x" if keypoint else "mask_rcnn_R_50_FPN_3x")
    cfg.MODEL.MASK_ON = mask
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 16
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    cfg.MODEL.ROI_KEYPOINT_HEAD.CONV_DIMS = [8, 8]
    shapes = {f"p{k}": ShapeSpec(channels=8, stride=2**k) for k in range(2, 7)}
    heads = _randomize(build_roi_heads(cfg, shapes))
    g = torch.Generator().manual_seed(2)
    features = {
        f"p{k}": torch.randn(2, 8, 64 // 2**k, 64 // 2**k, generator=g) for k in range(2, 7)
    }
    return heads, features


def test_standard_heads_flags_and_parts():
    heads, _ = _fpn_heads(mask=True, keypoint=False)
    assert isinstance(heads, StandardROIHeads)
    assert heads.mask_on and not heads.keypoint_on
    assert heads.box_in_features == heads.in_features == ["p2", "p3", "p4", "p5"]
    assert heads.mask_in_features == ["p2", "p3", "p4", "p5"]
    assert heads.box_pooler.output_size == (7, 7) and heads.mask_pooler.output_size == (14, 14)
    assert heads.num_classes == 3


def test_standard_heads_forward_matches_its_parts():
    heads, features = _fpn_heads()
    proposals = _proposals()
    results, losses = heads(None, features, proposals)
    assert losses == {}

    # The same computation, step by step through the parts.
    feats = [features[f] for f in ["p2", "p3", "p4", "p5"]]
    pooled = heads.box_pooler(feats, [p.proposal_boxes for p in proposals])
    predictions = heads.box_predictor(heads.box_head(pooled))
    expected, _ = heads.box_predictor.inference(predictions, proposals)
    mask_boxes = [r.pred_boxes for r in expected]
    mask_logits = heads.mask_head.layers(heads.mask_pooler(feats, mask_boxes))

    assert sum(len(r) for r in results) > 0
    offset = 0
    for res, exp, (h, w) in zip(results, expected, IMAGE_SIZES):
        assert res.image_size == (h, w)
        assert set(res.get_fields()) == {"pred_boxes", "scores", "pred_classes", "pred_masks"}
        torch.testing.assert_close(res.pred_boxes.tensor, exp.pred_boxes.tensor)
        torch.testing.assert_close(res.scores, exp.scores)
        assert torch.equal(res.pred_classes, exp.pred_classes)
        assert ((res.scores > 0.2) & (res.scores <= 1)).all() and (res.pred_classes < 3).all()
        n = len(res)
        assert res.pred_masks.shape == (n, 1, 28, 28)
        picked = mask_logits[torch.arange(offset, offset + n), exp.pred_classes]
        torch.testing.assert_close(res.pred_masks[:, 0], picked.sigmoid())
        offset += n


def test_keypoint_heads_forward():
    heads, features = _fpn_heads(mask=False, keypoint=True)
    assert heads.keypoint_on and not heads.mask_on
    assert heads.keypoint_pooler.output_size == (14, 14)
    results, _ = heads(None, features, _proposals())
    for res in results:
        n = len(res)
        assert set(res.get_fields()) == {
            "pred_boxes",
            "scores",
            "pred_classes",
            "pred_keypoints",
            "pred_keypoint_heatmaps",
        }
        assert res.pred_keypoints.shape == (n, 17, 3)
        assert res.pred_keypoint_heatmaps.shape == (n, 17, 56, 56)


def test_forward_with_given_boxes():
    heads, features = _fpn_heads(mask=True, keypoint=True)
    one = Instances((60, 64), pred_boxes=Boxes(torch.tensor([[0.0, 0, 30, 30]])))
    one.pred_classes = torch.tensor([2])
    empty = Instances((64, 50), pred_boxes=Boxes(torch.zeros(0, 4)))
    empty.pred_classes = torch.zeros(0, dtype=torch.int64)
    given = [one, empty]
    out = heads.forward_with_given_boxes(features, given)
    assert out[0].pred_masks.shape == (1, 1, 28, 28) and out[1].pred_masks.shape == (0, 1, 28, 28)
    assert out[0].pred_keypoints.shape == (1, 17, 3) and out[1].pred_keypoints.shape == (0, 17, 3)


def test_len_is_looked_up_in_the_head_modules():
    """TorchScript tracing replaces ``len`` in these modules (patch_builtin_len)."""
    heads, features = _fpn_heads(mask=True, keypoint=True)
    proposals = _proposals()
    modules = (fast_rcnn, mask_head, keypoint_head)
    with contextlib.ExitStack() as stack:
        patched = [
            stack.enter_context(
                mock.patch.object(m, "len", create=True, side_effect=lambda x: x.__len__())
            )
            for m in modules
        ]
        results, _ = heads(None, features, proposals)
    for p, module in zip(patched, modules):
        assert p.call_count > 0, module.__name__
    assert results[0].has("pred_masks") and results[0].has("pred_keypoints")


def test_training_is_refused():
    heads, features = _fpn_heads()
    heads.train()
    with pytest.raises(NotImplementedError, match="StandardROIHeads: training=True"):
        heads(None, features, _proposals())


def _res5_heads():
    cfg = zoo_cfg("mask_rcnn_R_50_C4_3x")
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.2
    cfg.MODEL.RESNETS.RES2_OUT_CHANNELS = 8  # res5: 32 -> 64 channels
    cfg.MODEL.RESNETS.WIDTH_PER_GROUP = 2  # bottleneck 16
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    heads = _randomize(build_roi_heads(cfg, {"res4": ShapeSpec(channels=32, stride=16)}))
    features = {"res4": torch.randn(2, 32, 4, 4, generator=torch.Generator().manual_seed(3))}
    return heads, features


def test_res5_heads_layout():
    heads, _ = _res5_heads()
    assert isinstance(heads, Res5ROIHeads) and heads.mask_on
    shapes = {k: tuple(v.shape) for k, v in heads.state_dict().items()}
    assert shapes["res5.0.shortcut.weight"] == (64, 32, 1, 1)
    assert shapes["res5.0.conv1.weight"] == (16, 32, 1, 1)
    assert shapes["res5.2.conv3.weight"] == (64, 16, 1, 1)
    assert shapes["box_predictor.cls_score.weight"] == (4, 64)
    assert shapes["mask_head.deconv.weight"] == (64, 8, 2, 2)
    assert heads.res5[0].stride == 2


def test_res5_heads_forward_matches_its_parts():
    heads, features = _res5_heads()
    proposals = _proposals()
    results, losses = heads(None, features, proposals)
    assert losses == {}

    x = heads.res5(heads.pooler([features["res4"]], [p.proposal_boxes for p in proposals]))
    predictions = heads.box_predictor(x.mean(dim=[2, 3]))
    expected, _ = heads.box_predictor.inference(predictions, proposals)
    assert sum(len(r) for r in results) > 0
    for res, exp in zip(results, expected):
        torch.testing.assert_close(res.pred_boxes.tensor, exp.pred_boxes.tensor)
        torch.testing.assert_close(res.scores, exp.scores)
        # pooled 14x14 -> res5 (stride 2) 7x7 -> deconv 14x14
        assert res.pred_masks.shape == (len(res), 1, 14, 14)


@pytest.mark.parametrize("make", [_fpn_heads, _res5_heads])
def test_forward_with_given_boxes_checks_its_inputs(make):
    """Issue 18: these were asserts (gone under python -O); now ModelInputError, still an AssertionError."""
    heads, features = make()
    proposals_only = _proposals()[:1]
    with pytest.raises(ModelInputError, match="expected pred_boxes and pred_classes") as e:
        heads.forward_with_given_boxes(features, proposals_only)
    assert isinstance(e.value, AssertionError)
    heads.train()
    with pytest.raises(ModelInputError, match="forward_with_given_boxes in training mode"):
        heads.forward_with_given_boxes(features, proposals_only)


@pytest.mark.parametrize("key,value,message", [
    ("MODEL.KEYPOINT_ON", True, "Res5ROIHeads has no keypoint head"),
    ("MODEL.ROI_HEADS.IN_FEATURES", ["res4", "res3"], "expected one feature for Res5ROIHeads"),
    ("MODEL.RESNETS.DEFORM_ON_PER_STAGE", [False, False, False, True], "Deformable conv is not yet supported"),
])
def test_res5_heads_config_errors_name_the_key(key, value, message):
    cfg = zoo_cfg("mask_rcnn_R_50_C4_3x")
    cfg.merge_from_list([key, value])
    shapes = {"res4": ShapeSpec(channels=32, stride=16), "res3": ShapeSpec(channels=32, stride=8)}
    with pytest.raises(ConfigError, match=f"{key}.*{message}"):
        build_roi_heads(cfg, shapes)


def test_box_pooler_levels_must_share_channels():
    cfg = zoo_cfg("mask_rcnn_R_50_FPN_3x")
    shapes = {f"p{k}": ShapeSpec(channels=8 if k < 4 else 16, stride=2**k) for k in range(2, 7)}
    with pytest.raises(ConfigError, match=r"have channels \[8, 8, 16, 16\], expected one channel count"):
        build_roi_heads(cfg, shapes)
