"""find_top_rpn_proposals on hand-made two-level inputs."""

import math
import warnings

import pytest
import torch

from detectron2_export.modeling.proposal_generator.proposal_utils import find_top_rpn_proposals

# One image of (h, w) = (20, 30). Level 0 has 4 proposals, level 1 has 2.
A0 = [0.0, 0.0, 10.0, 10.0]  # logit 0.1; IoU(A0, A1) = 81 / 119 = 0.68
A1 = [1.0, 1.0, 11.0, 11.0]  # logit 0.9
A2 = [20.0, 5.0, 40.0, 15.0]  # logit 0.5; clipped to x2 = 30
A3 = [2.0, 12.0, 8.0, 18.0]  # logit -1.0; 4th of its level, cut by pre_nms_topk=3
B0 = [0.0, 0.0, 10.0, 10.0]  # logit 0.8; same box as A0, other level
B1 = [5.0, 5.0, 5.5, 15.0]  # logit 0.3; width 0.5 <= min_box_size
IMAGE_SIZE = (20, 30)


def _inputs(num_images=1):
    level0 = torch.tensor([[A0, A1, A2, A3]] * num_images)
    level1 = torch.tensor([[B0, B1]] * num_images)
    logits0 = torch.tensor([[0.1, 0.9, 0.5, -1.0]] * num_images)
    logits1 = torch.tensor([[0.8, 0.3]] * num_images)
    return [level0, level1], [logits0, logits1]


def _run(proposals, logits, image_sizes, post_nms_topk=10, training=False):
    return find_top_rpn_proposals(
        proposals,
        logits,
        image_sizes,
        nms_thresh=0.5,
        pre_nms_topk=3,
        post_nms_topk=post_nms_topk,
        min_box_size=1.0,
        training=training,
    )


def test_hand_computed_two_levels():
    proposals, logits = _inputs()
    (res,) = _run(proposals, logits, [IMAGE_SIZE])
    # A0 is suppressed by A1 (same level, IoU 0.68 > 0.5); B0 overlaps A1 as much but is on
    # another level, so it stays; B1 is too thin; A3 never makes the per-level top 3.
    expected_boxes = torch.tensor([A1, B0, [20.0, 5.0, 30.0, 15.0]])
    torch.testing.assert_close(res.proposal_boxes.tensor, expected_boxes)
    torch.testing.assert_close(res.objectness_logits, torch.tensor([0.9, 0.8, 0.5]))
    assert res.image_size == IMAGE_SIZE


def test_post_nms_topk_keeps_the_best_over_all_levels():
    proposals, logits = _inputs()
    (res,) = _run(proposals, logits, [IMAGE_SIZE], post_nms_topk=2)
    torch.testing.assert_close(res.proposal_boxes.tensor, torch.tensor([A1, B0]))
    torch.testing.assert_close(res.objectness_logits, torch.tensor([0.9, 0.8]))


def test_pre_nms_topk_is_per_level():
    # With pre_nms_topk=1 each level keeps only its best proposal, before NMS.
    proposals, logits = _inputs()
    (res,) = find_top_rpn_proposals(proposals, logits, [IMAGE_SIZE], 0.5, 1, 10, 1.0, False)
    torch.testing.assert_close(res.proposal_boxes.tensor, torch.tensor([A1, B0]))


def test_batch_images_are_independent_and_non_finite_is_dropped():
    proposals, logits = _inputs(num_images=2)
    proposals[0][1, 1, 2] = math.nan  # image 1 loses A1, so A0 is no longer suppressed
    res = _run(proposals, logits, [IMAGE_SIZE, (12, 12)])
    torch.testing.assert_close(res[0].objectness_logits, torch.tensor([0.9, 0.8, 0.5]))
    # image 1: size (12, 12) clips A2 to an empty box (x1 = x2 = 12), removed by min_box_size
    torch.testing.assert_close(res[1].proposal_boxes.tensor, torch.tensor([B0, A0]))
    torch.testing.assert_close(res[1].objectness_logits, torch.tensor([0.8, 0.1]))


def test_non_finite_raises_in_training():
    proposals, logits = _inputs()
    logits[1][0, 0] = math.inf
    with pytest.raises(FloatingPointError, match="Inf/NaN"):
        _run(proposals, logits, [IMAGE_SIZE], training=True)


def test_level_smaller_than_pre_nms_topk():
    # Level 1 has 2 proposals < pre_nms_topk=3: all are candidates, without error.
    proposals, logits = _inputs()
    (res,) = find_top_rpn_proposals(proposals, logits, [IMAGE_SIZE], 1.0, 3, 10, 0.0, False)
    # nms_thresh=1.0 suppresses nothing, min_box_size=0 keeps B1: 3 + 2 boxes
    torch.testing.assert_close(res.objectness_logits, torch.tensor([0.9, 0.8, 0.5, 0.3, 0.1]))


def test_traced_graph_follows_the_input_size():
    """Traced on one input, the graph must handle other anchor counts and other boxes: sizes
    stay tensors and the empty-box filter is recorded even when it removed nothing."""

    def top_boxes(level0, logits0):
        (res,) = find_top_rpn_proposals([level0], [logits0], [(100, 100)], 0.5, 3, 2, 1.0, False)
        return res.proposal_boxes.tensor, res.objectness_logits

    g = torch.Generator().manual_seed(0)

    def random_inputs(n, thin_best=False):
        xy = torch.rand(1, n, 2, generator=g) * 50
        wh = torch.rand(1, n, 2, generator=g) * 40 + 5
        logits = torch.randn(1, n, generator=g)
        if thin_best:  # the best-scoring box becomes 0.5 pixel wide: it must be dropped
            wh[0, 0, 0] = 0.5
            logits[0, 0] = 10.0
        return torch.cat([xy, xy + wh], dim=2), logits

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(top_boxes, random_inputs(6), check_trace=False)
    for n in (2, 5, 9):
        inputs = random_inputs(n, thin_best=True)
        got, want = traced(*inputs), top_boxes(*inputs)
        assert want[1].max() < 10.0  # the reference did drop the thin box
        for got_i, want_i in zip(got, want):
            torch.testing.assert_close(got_i, want_i)
