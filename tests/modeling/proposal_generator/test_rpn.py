"""StandardRPNHead and RPN: upstream state_dict keys, layouts, decoding and the inference path."""

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.config import get_cfg
from detectron2_export.layers import ShapeSpec
from detectron2_export.modeling.proposal_generator import (
    PROPOSAL_GENERATOR_REGISTRY,
    RPN,
    StandardRPNHead,
    build_proposal_generator,
)
from detectron2_export.structures import ImageList

from ..roi_heads.zoo import ZOO, built_shapes, expected_shapes, zoo_cfg, zoo_input_shape


@pytest.mark.parametrize("name", sorted(ZOO))
def test_state_dict_matches_upstream(name):
    got = built_shapes(build_proposal_generator, zoo_cfg(name), zoo_input_shape(name))
    assert got == expected_shapes(name, "proposal_generator.")


def test_precomputed_proposals_builds_nothing():
    cfg = get_cfg()
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "PrecomputedProposals"
    assert build_proposal_generator(cfg, {}) is None


def test_unknown_name_lists_registered():
    cfg = get_cfg()
    cfg.MODEL.PROPOSAL_GENERATOR.NAME = "RRPN"
    with pytest.raises(KeyError, match="RPN"):
        build_proposal_generator(cfg, {"res4": ShapeSpec(channels=8, stride=16)})
    assert "RPN" in PROPOSAL_GENERATOR_REGISTRY


def test_head_conv_dims_names_and_validation():
    head = StandardRPNHead(in_channels=8, num_anchors=3, box_dim=4, conv_dims=[16, -1])
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert shapes["conv.conv0.weight"] == (16, 8, 3, 3)
    assert shapes["conv.conv1.weight"] == (16, 16, 3, 3)  # -1 keeps the previous width
    assert shapes["objectness_logits.weight"] == (3, 16, 1, 1)
    assert shapes["anchor_deltas.weight"] == (12, 16, 1, 1)
    with pytest.raises(ValueError, match=r"conv_dims\[1\]=0"):
        StandardRPNHead(in_channels=8, num_anchors=3, conv_dims=[8, 0])


def test_head_forward_is_relu_conv_then_two_1x1():
    torch.manual_seed(0)
    head = StandardRPNHead(in_channels=4, num_anchors=2, box_dim=4)
    for p in head.parameters():
        torch.nn.init.normal_(p)
    features = [torch.randn(2, 4, 5, 6), torch.randn(2, 4, 3, 3)]
    logits, deltas = head(features)
    for x, lg, dl in zip(features, logits, deltas):
        t = F.relu(F.conv2d(x, head.conv.weight, head.conv.bias, padding=1))
        cls_layer, box_layer = head.objectness_logits, head.anchor_deltas
        torch.testing.assert_close(lg, F.conv2d(t, cls_layer.weight, cls_layer.bias))
        torch.testing.assert_close(dl, F.conv2d(t, box_layer.weight, box_layer.bias))
        assert lg.shape == (2, 2) + x.shape[2:] and dl.shape == (2, 8) + x.shape[2:]


def _small_fpn_rpn(post_nms_topk=20):
    cfg = zoo_cfg("mask_rcnn_R_50_FPN_3x")
    cfg.MODEL.RPN.POST_NMS_TOPK_TEST = post_nms_topk
    shapes = {f"p{k}": ShapeSpec(channels=4, stride=2**k) for k in range(2, 7)}
    torch.manual_seed(0)
    rpn = build_proposal_generator(cfg, shapes).eval()
    for p in rpn.rpn_head.parameters():  # non-trivial predictions
        torch.nn.init.normal_(p, std=0.3)
    images = ImageList(torch.zeros(2, 3, 64, 96), [(60, 90), (64, 70)])
    features = {f"p{k}": torch.randn(2, 4, 64 // 2**k, 96 // 2**k) for k in range(2, 7)}
    return rpn, images, features


def test_from_config_settings():
    rpn, _, _ = _small_fpn_rpn()
    assert isinstance(rpn, RPN)
    assert rpn.in_features == ["p2", "p3", "p4", "p5", "p6"]
    assert rpn.pre_nms_topk == {True: 2000, False: 1000}
    assert rpn.post_nms_topk == {True: 1000, False: 20}
    assert rpn.nms_thresh == 0.7 and rpn.min_box_size == 0.0
    assert rpn.anchor_boundary_thresh == -1
    assert rpn.box2box_transform.weights == (1.0, 1.0, 1.0, 1.0)


def test_decoding_layout_matches_anchor_order():
    """Proposal j of a level is anchor j moved by the deltas at (y, x, a), j = (y*W + x)*A + a."""
    rpn, images, features = _small_fpn_rpn()
    feats = [features[f] for f in rpn.in_features]
    anchors = rpn.anchor_generator(feats)
    _, raw_deltas = rpn.rpn_head(feats)
    level, n, y, x, a = 1, 1, 3, 5, 2
    H, W, A = raw_deltas[level].shape[2], raw_deltas[level].shape[3], 3
    deltas = [
        d.view(d.shape[0], -1, 4, d.shape[-2], d.shape[-1]).permute(0, 3, 4, 1, 2).flatten(1, -2)
        for d in raw_deltas
    ]
    proposals = rpn._decode_proposals(anchors, deltas)
    j = (y * W + x) * A + a
    assert proposals[level].shape == (2, H * W * A, 4)
    dx, dy, dw, dh = raw_deltas[level][n, 4 * a : 4 * a + 4, y, x].tolist()
    x0, y0, x1, y1 = anchors[level].tensor[j].tolist()
    w, h = x1 - x0, y1 - y0
    cx, cy = x0 + 0.5 * w + dx * w, y0 + 0.5 * h + dy * h
    pw, ph = w * torch.tensor(dw).exp().item(), h * torch.tensor(dh).exp().item()
    expected = torch.tensor([cx - pw / 2, cy - ph / 2, cx + pw / 2, cy + ph / 2])
    torch.testing.assert_close(proposals[level][n, j], expected, rtol=1e-5, atol=1e-4)


def test_forward_inference():
    rpn, images, features = _small_fpn_rpn(post_nms_topk=20)
    proposals, losses = rpn(images, features)
    assert losses == {}
    assert len(proposals) == 2

    # Independent view of all candidates: every anchor, decoded, clipped, non-empty.
    feats = [features[f] for f in rpn.in_features]
    raw_logits, raw_deltas = rpn.rpn_head(feats)
    logits = torch.cat([lg.permute(0, 2, 3, 1).flatten(1) for lg in raw_logits], dim=1)
    deltas = [
        d.view(2, 3, 4, *d.shape[-2:]).permute(0, 3, 4, 1, 2).flatten(1, -2) for d in raw_deltas
    ]
    decoded = torch.cat(rpn._decode_proposals(rpn.anchor_generator(feats), deltas), dim=1)
    for i, p in enumerate(proposals):
        h, w = images.image_sizes[i]
        assert p.image_size == (h, w)
        assert 0 < len(p) <= 20
        boxes = p.proposal_boxes.tensor
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
        assert (boxes[:, 2] <= w).all() and (boxes[:, 3] <= h).all()
        scores = p.objectness_logits
        assert (scores[:-1] >= scores[1:]).all()  # sorted
        # The best candidate is never suppressed by NMS: it comes first.
        clipped = torch.stack(
            [
                decoded[i, :, 0].clamp(0, w),
                decoded[i, :, 1].clamp(0, h),
                decoded[i, :, 2].clamp(0, w),
                decoded[i, :, 3].clamp(0, h),
            ],
            dim=1,
        )
        nonempty = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        best = logits[i].masked_fill(~nonempty, -float("inf")).argmax()
        assert scores[0] == logits[i, best]
        torch.testing.assert_close(boxes[0], clipped[best])


def test_training_is_refused():
    rpn, images, features = _small_fpn_rpn()
    rpn.train()
    with pytest.raises(NotImplementedError, match="RPN: training=True"):
        rpn(images, features)
