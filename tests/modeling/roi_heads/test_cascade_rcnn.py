"""CascadeROIHeads: upstream's state_dict for the cascade zoo configs, and a two-stage cascade
computed by hand from the single-stage parts (pooler, box head, predictor, Box2BoxTransform with
the stage's weights, fast_rcnn_inference) equal to the heads' output."""

import pytest
import torch
from torch.nn import functional as F

from detectron2_export.errors import ConfigError
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.box_regression import Box2BoxTransform
from detectron2_export.modeling.roi_heads import CascadeROIHeads, build_roi_heads
from detectron2_export.modeling.roi_heads.fast_rcnn import fast_rcnn_inference
from detectron2_export.structures import Boxes

from ..stubs import shapes_of, upstream_keys, zoo_cfg
from ..test_deform_resnet import build_on_meta
from .test_roi_heads import IMAGE_SIZES, _proposals, _randomize

STAGE_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0))


def cascade_cfg():
    """Misc/cascade_mask_rcnn_R_50_FPN_3x.yaml: upstream's overrides on the R50-FPN Mask R-CNN."""
    cfg = zoo_cfg("COCO-InstanceSegmentation/mask_rcnn_R_50_FPN_3x.yaml")
    cfg.MODEL.ROI_HEADS.NAME = "CascadeROIHeads"
    cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = True
    cfg.MODEL.RPN.POST_NMS_TOPK_TRAIN = 2000
    return cfg


def test_cascade_zoo_model_has_upstream_keys_and_shapes():
    model = build_on_meta(cascade_cfg())
    assert isinstance(model.roi_heads, CascadeROIHeads) and model.roi_heads.num_cascade_stages == 3
    assert shapes_of(model) == upstream_keys("cascade_mask_rcnn_R_50_FPN_3x", "")


def test_panoptic_dconv_cascade_gn_has_upstream_keys_and_shapes():
    """Misc/panoptic_fpn_R_101_dconv_cascade_gn_3x.yaml: cascade + DCN + GroupNorm everywhere."""
    cfg = zoo_cfg("COCO-PanopticSegmentation/panoptic_fpn_R_50_3x.yaml")
    overrides = {
        "MODEL.RESNETS.DEPTH": 101, "MODEL.RESNETS.NORM": "GN", "MODEL.RESNETS.STRIDE_IN_1X1": False,
        "MODEL.RESNETS.DEFORM_ON_PER_STAGE": [False, True, True, True], "MODEL.FPN.NORM": "GN",
        "MODEL.ROI_HEADS.NAME": "CascadeROIHeads", "MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG": True,
        "MODEL.ROI_MASK_HEAD.NORM": "GN", "MODEL.RPN.POST_NMS_TOPK_TRAIN": 2000,
    }
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    assert shapes_of(build_on_meta(cfg)) == upstream_keys("panoptic_fpn_R_101_dconv_cascade_gn_3x", "")


def _two_stage_heads():
    cfg = cascade_cfg()
    cfg.MODEL.ROI_HEADS.NUM_CLASSES = 3
    cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = 0.2
    cfg.MODEL.ROI_BOX_HEAD.FC_DIM = 16
    cfg.MODEL.ROI_MASK_HEAD.CONV_DIM = 8
    cfg.MODEL.ROI_BOX_CASCADE_HEAD.BBOX_REG_WEIGHTS = STAGE_WEIGHTS
    cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.5, 0.6)
    shapes = {f"p{k}": ShapeSpec(channels=8, stride=2**k) for k in range(2, 7)}
    heads = _randomize(build_roi_heads(cfg, shapes))
    g = torch.Generator().manual_seed(2)
    features = {f"p{k}": torch.randn(2, 8, 64 // 2**k, 64 // 2**k, generator=g) for k in range(2, 7)}
    return heads, features


def test_stages_have_their_own_parts_and_weights():
    heads, _ = _two_stage_heads()
    assert heads.num_cascade_stages == 2 and len(heads.box_head) == len(heads.box_predictor) == 2
    assert heads.box_head[0] is not heads.box_head[1]
    assert [p.box2box_transform.weights for p in heads.box_predictor] == [tuple(w) for w in STAGE_WEIGHTS]
    assert all(p.bbox_pred.out_features == 4 for p in heads.box_predictor)  # class-agnostic


def test_two_stage_cascade_matches_hand_computation():
    heads, features = _two_stage_heads()
    proposals = _proposals()
    with torch.no_grad():
        results, losses = heads(None, features, proposals)
    assert losses == {}

    feats = [features[f] for f in ["p2", "p3", "p4", "p5"]]
    stage_boxes = [torch.cat([p.proposal_boxes.tensor for p in proposals])]
    probs = []
    counts = [len(p) for p in proposals]
    with torch.no_grad():
        for k, weights in enumerate(STAGE_WEIGHTS):
            boxes = [Boxes(b) for b in stage_boxes[-1].split(counts)]
            if k > 0:  # the previous stage's boxes, clipped, are this stage's proposals
                for b, image_size in zip(boxes, IMAGE_SIZES):
                    b.clip(image_size)
            logits, deltas = heads.box_predictor[k](heads.box_head[k](heads.box_pooler(feats, boxes)))
            probs.append(F.softmax(logits, dim=-1))
            sources = torch.cat([b.tensor for b in boxes])
            stage_boxes.append(Box2BoxTransform(weights).apply_deltas(deltas, sources))
        mean_probs = (probs[0] + probs[1]) / 2
        expected, _ = fast_rcnn_inference(
            list(stage_boxes[-1].split(counts)), list(mean_probs.split(counts)), IMAGE_SIZES, 0.2, 0.5, 100
        )
        mask_logits = heads.mask_head.layers(heads.mask_pooler(feats, [e.pred_boxes for e in expected]))

    assert sum(len(e) for e in expected) >= 4
    offset = 0
    for res, exp in zip(results, expected):
        torch.testing.assert_close(res.pred_boxes.tensor, exp.pred_boxes.tensor, rtol=1e-5, atol=1e-4)
        torch.testing.assert_close(res.scores, exp.scores, rtol=1e-5, atol=1e-6)
        assert torch.equal(res.pred_classes, exp.pred_classes)
        # masks come from the final boxes
        n = len(res)
        picked = mask_logits[torch.arange(offset, offset + n), exp.pred_classes]
        torch.testing.assert_close(res.pred_masks[:, 0], picked.sigmoid(), rtol=1e-5, atol=1e-5)
        offset += n
    # the averaging matters: the last stage's probabilities alone give other scores
    assert not torch.allclose(probs[1], mean_probs, atol=1e-3)


def test_bad_cascade_configs_raise():
    cfg = cascade_cfg()
    shapes = {f"p{k}": ShapeSpec(channels=8, stride=2**k) for k in range(2, 7)}
    cfg.MODEL.ROI_BOX_HEAD.CLS_AGNOSTIC_BBOX_REG = False
    with pytest.raises(ConfigError, match="CLS_AGNOSTIC_BBOX_REG=False, expected True"):
        build_roi_heads(cfg, shapes)
    cfg = cascade_cfg()
    cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.5, 0.6)
    with pytest.raises(ConfigError, match="BBOX_REG_WEIGHTS has 3 entries, expected one per IOUS entry \\(2\\)"):
        build_roi_heads(cfg, shapes)
    cfg = cascade_cfg()
    cfg.MODEL.ROI_BOX_CASCADE_HEAD.IOUS = (0.4, 0.6, 0.7)
    with pytest.raises(ConfigError, match="IOUS\\[0\\]=0.4, expected MODEL.ROI_HEADS.IOU_THRESHOLDS\\[0\\]=0.5"):
        build_roi_heads(cfg, shapes)


def test_training_mode_raises():
    heads, features = _two_stage_heads()
    heads.train()
    with pytest.raises(NotImplementedError, match="CascadeROIHeads: training=True"):
        heads(None, features, _proposals())
