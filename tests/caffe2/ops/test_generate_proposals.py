import math

import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

ROTATED_ARGS = dict(angle_bound_on=True, angle_bound_lo=-90, angle_bound_hi=90, clip_angle_thresh=1.0)


def generate(scores, deltas, im_info, anchors, *, spatial_scale=1 / 16, pre_nms_topN=6000, post_nms_topN=300,
             nms_thresh=0.7, min_size=16.0, legacy_plus_one=True, **rotated):
    """The torch op with SPEC 5.1's defaults."""
    args = {**ROTATED_ARGS, **rotated}
    return torch.ops._caffe2.GenerateProposals(
        scores, deltas, im_info, anchors, spatial_scale, pre_nms_topN, post_nms_topN, nms_thresh, min_size,
        args["angle_bound_on"], args["angle_bound_lo"], args["angle_bound_hi"], args["clip_angle_thresh"],
        legacy_plus_one,
    )


def two_cells(scores=(0.8, 0.9)):
    """One anchor (0, 0, 15, 15) on a 1x2 grid of stride 16, zero deltas."""
    return (
        torch.tensor(scores).view(1, 1, 1, 2),
        torch.zeros(1, 4, 1, 2),
        torch.tensor([[0.0, 0.0, 15.0, 15.0]]),
    )


def test_hand_computed_two_cells_sorted_by_score():
    scores, deltas, anchors = two_cells()
    rois, probs = generate(scores, deltas, torch.tensor([[32.0, 32.0, 1.0]]), anchors)
    # the anchor shifted by (16, 0) scores higher; both are 16 wide with legacy_plus_one
    torch.testing.assert_close(rois, torch.tensor([[0.0, 16, 0, 31, 15], [0, 0, 0, 15, 15]]))
    torch.testing.assert_close(probs, torch.tensor([0.9, 0.8]))


def test_no_plus_one_clips_to_full_size():
    scores, deltas, _ = two_cells()
    anchors = torch.tensor([[0.0, 0.0, 16.0, 16.0]])
    rois, _ = generate(scores, deltas, torch.tensor([[16.0, 40.0, 1.0]]), anchors, legacy_plus_one=False)
    # clipped to x <= 40, y <= 16 (not 39, 15)
    torch.testing.assert_close(rois, torch.tensor([[0.0, 16, 0, 32, 16], [0, 0, 0, 16, 16]]))


@pytest.mark.parametrize("min_size, expected", [(0.0, [[0.0, 16, 0, 23, 15], [0, 0, 0, 15, 15]]), (16.0, [[0.0, 0, 0, 15, 15]])])
def test_clip_then_min_size_filter(min_size, expected):
    scores, deltas, anchors = two_cells()
    # the image is 24 wide: the second box is clipped to x2 = 23, i.e. 8 pixels wide
    rois, _ = generate(scores, deltas, torch.tensor([[20.0, 24.0, 1.0]]), anchors, min_size=min_size)
    torch.testing.assert_close(rois, torch.tensor(expected))


@pytest.mark.parametrize("scale, count", [(1.0, 2), (2.0, 0)])
def test_min_size_is_scaled_by_im_info(scale, count):
    scores, deltas, anchors = two_cells()
    rois, probs = generate(scores, deltas, torch.tensor([[32.0, 32.0, scale]]), anchors, min_size=10.0)
    assert rois.shape == (count, 5) and probs.shape == (count,)


def test_pre_nms_top_n_applies_before_the_filter_post_nms_top_n_after():
    scores, deltas, anchors = two_cells()
    im_info = torch.tensor([[20.0, 24.0, 1.0]])  # the best box is clipped and then filtered
    rois, _ = generate(scores, deltas, im_info, anchors, pre_nms_topN=1)
    assert rois.shape == (0, 5)
    rois, _ = generate(scores, deltas, im_info, anchors, post_nms_topN=1)
    torch.testing.assert_close(rois, torch.tensor([[0.0, 0, 0, 15, 15]]))


@pytest.mark.parametrize("nms_thresh, count", [(0.7, 1), (0.9, 2)])
def test_nms_between_anchors_of_one_cell(nms_thresh, count):
    anchors = torch.tensor([[0.0, 0.0, 15.0, 15.0], [0.0, 0.0, 15.0, 13.0]])  # IoU 224 / 256 = 0.875
    scores = torch.tensor([0.9, 0.8]).view(1, 2, 1, 1)
    rois, probs = generate(scores, torch.zeros(1, 8, 1, 1), torch.tensor([[32.0, 32.0, 1.0]]), anchors,
                           nms_thresh=nms_thresh, min_size=0.0)
    assert rois.shape == (count, 5)
    torch.testing.assert_close(probs, torch.tensor([0.9, 0.8])[:count])


def test_batch_rows_carry_image_index_and_own_im_info():
    scores, deltas, anchors = two_cells()
    scores, deltas = torch.cat((scores, scores)), torch.cat((deltas, deltas))
    im_info = torch.tensor([[32.0, 32.0, 1.0], [20.0, 24.0, 1.0]])
    rois, probs = generate(scores, deltas, im_info, anchors)
    torch.testing.assert_close(rois[:, 0], torch.tensor([0.0, 0.0, 1.0]))
    torch.testing.assert_close(rois[2], torch.tensor([1.0, 0, 0, 15, 15]))
    torch.testing.assert_close(probs, torch.tensor([0.9, 0.8, 0.8]))


def test_deltas_are_read_per_anchor_and_cell():
    # 2 anchors on a 1x2 grid; only anchor 1 at cell x=1 moves (dx = 0.5 of its 16 pixel width)
    anchors = torch.tensor([[0.0, 0.0, 15.0, 15.0], [0.0, 0.0, 15.0, 15.0]])
    scores = torch.tensor([0.1, 0.2, 0.3, 0.4]).view(1, 2, 1, 2)
    deltas = torch.zeros(1, 8, 1, 2)
    deltas[0, 4, 0, 1] = 0.5
    rois, probs = generate(scores, deltas, torch.tensor([[64.0, 64.0, 1.0]]), anchors, nms_thresh=1.0, min_size=0.0)
    torch.testing.assert_close(probs, torch.tensor([0.4, 0.3, 0.2, 0.1]))
    torch.testing.assert_close(rois[0], torch.tensor([0.0, 24, 0, 39, 15]))
    torch.testing.assert_close(rois[1], torch.tensor([0.0, 0, 0, 15, 15]))


def test_empty_outputs_keep_their_columns():
    rois, probs = generate(torch.zeros(1, 3, 0, 0), torch.zeros(1, 12, 0, 0), torch.tensor([[8.0, 8.0, 1.0]]),
                           torch.zeros(3, 4))
    assert rois.shape == (0, 5) and probs.shape == (0,)
    rois, probs = generate(torch.zeros(1, 1, 2, 2), torch.zeros(1, 5, 2, 2), torch.tensor([[8.0, 8.0, 1.0]]),
                           torch.tensor([[0.0, 0.0, 1.0, 1.0, 0.0]]), min_size=100.0)
    assert rois.shape == (0, 6) and probs.shape == (0,)


def test_rotated_anchors():
    anchors = torch.tensor([[8.0, 8.0, 16.0, 16.0, 0.0]])
    scores = torch.tensor([0.8, 0.9]).view(1, 1, 1, 2)
    deltas = torch.zeros(1, 5, 1, 2)
    deltas[0, 4, 0, 1] = math.pi / 6  # +30 degrees: not clipped (not near upright)
    deltas[0, 4, 0, 0] = math.pi  # +180 degrees: wrapped to 0 by the [-90, 90] bound
    rois, _ = generate(scores, deltas, torch.tensor([[32.0, 32.0, 1.0]]), anchors, nms_thresh=1.0, min_size=0.0)
    torch.testing.assert_close(rois, torch.tensor([[0.0, 24, 8, 16, 16, 30], [0, 8, 8, 16, 16, 0]]), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------
# independent formulation: a per-anchor Python loop written from SPEC 5.1
# ---------------------------------------------------------------------------------------------


def naive_generate_proposals(scores, deltas, im_info, anchors, stride, pre, post, nms_thresh, min_size, plus):
    from tests.caffe2.ops.test_box_utils import naive_caffe2_nms

    clip = math.log(1000.0 / 16.0)
    out_rois, out_probs = [], []
    n, a_count, height, width = scores.shape
    for i in range(n):
        im_h, im_w, im_scale = im_info[i].tolist()
        cells = []
        for a in range(a_count):
            for y in range(height):
                for x in range(width):
                    anchor = anchors[a].tolist()
                    box = [anchor[0] + x * stride, anchor[1] + y * stride, anchor[2] + x * stride, anchor[3] + y * stride]
                    d = [float(deltas[i, a * 4 + k, y, x]) for k in range(4)]
                    cells.append((float(scores[i, a, y, x]), box, d))
        cells.sort(key=lambda c: -c[0])
        if 0 < pre < len(cells):
            cells = cells[:pre]
        boxes, probs = [], []
        for score, (x1, y1, x2, y2), (dx, dy, dw, dh) in cells:
            w, h = x2 - x1 + plus, y2 - y1 + plus
            cx, cy = x1 + 0.5 * w, y1 + 0.5 * h
            pcx, pcy = dx * w + cx, dy * h + cy
            pw, ph = math.exp(min(dw, clip)) * w, math.exp(min(dh, clip)) * h
            box = [pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw - plus, pcy + 0.5 * ph - plus]
            limits = [int(im_w) - plus, int(im_h) - plus] * 2
            box = [max(min(v, lim), 0.0) for v, lim in zip(box, limits)]
            bw, bh = box[2] - box[0] + plus, box[3] - box[1] + plus
            if bw >= min_size * im_scale and bh >= min_size * im_scale and box[0] + bw / 2 < im_w and box[1] + bh / 2 < im_h:
                boxes.append(box)
                probs.append(score)
        top_n = post if 0 < post < len(boxes) else -1
        keep = naive_caffe2_nms(torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4), nms_thresh, top_n, plus)
        out_rois += [[float(i)] + boxes[k] for k in keep]
        out_probs += [probs[k] for k in keep]
    return torch.tensor(out_rois).reshape(-1, 5), torch.tensor(out_probs)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("pre, post", [(6000, 300), (25, 12), (-1, 5)])
def test_matches_naive_per_anchor_loop(legacy, pre, post):
    g = torch.Generator().manual_seed(7)
    n, a, h, w = 2, 3, 5, 6
    scores = torch.randperm(n * a * h * w, generator=g).float().view(n, a, h, w) / 100  # distinct
    deltas = torch.randn(n, 4 * a, h, w, generator=g) * 0.3
    anchors = torch.tensor([[-8.0, -8.0, 8.0, 8.0], [-16.0, -8.0, 16.0, 8.0], [-12.0, -20.0, 12.0, 20.0]])
    im_info = torch.tensor([[75.0, 90.0, 1.0], [60.0, 70.0, 1.5]])
    rois, probs = generate(scores, deltas, im_info, anchors, spatial_scale=1 / 16, pre_nms_topN=pre,
                           post_nms_topN=post, nms_thresh=0.6, min_size=4.0, legacy_plus_one=legacy)
    ref_rois, ref_probs = naive_generate_proposals(scores, deltas, im_info, anchors, 16.0, pre, post, 0.6, 4.0, float(legacy))
    assert rois.shape == ref_rois.shape and rois.shape[0] > 0
    torch.testing.assert_close(rois, ref_rois, atol=1e-3, rtol=0)
    torch.testing.assert_close(probs, ref_probs)


# ---------------------------------------------------------------------------------------------
# runtime, checks, opcheck
# ---------------------------------------------------------------------------------------------


def test_runtime_defaults_are_caffe2s():
    g = torch.Generator().manual_seed(1)
    scores, deltas = torch.rand(1, 2, 8, 8, generator=g), torch.randn(1, 8, 8, 8, generator=g) * 0.2
    anchors = torch.tensor([[-30.0, -30.0, 30.0, 30.0], [-60.0, -30.0, 60.0, 30.0]])
    im_info = torch.tensor([[128.0, 128.0, 1.0]])
    rois, probs = run_single_op("GenerateProposals", [scores, deltas, im_info, anchors])
    expected = generate(scores, deltas, im_info, anchors)  # spatial_scale 1/16, topN 6000/300, 0.7, 16, L=1
    torch.testing.assert_close((rois, probs), expected)
    rois2, _ = run_single_op(
        "GenerateProposals", [scores, deltas, im_info, anchors], spatial_scale=0.0625, pre_nms_topN=10,
        post_nms_topN=3, nms_thresh=0.5, min_size=0.0, legacy_plus_one=False, correct_transform_coords=True,
    )
    torch.testing.assert_close(rois2, generate(scores, deltas, im_info, anchors, pre_nms_topN=10, post_nms_topN=3,
                                               nms_thresh=0.5, min_size=0.0, legacy_plus_one=False)[0])


def test_bad_inputs_and_arguments():
    scores, deltas, anchors = two_cells()
    with pytest.raises(OperatorInputError, match=r"GenerateProposals: bbox_deltas shape=\(1, 3, 1, 2\), expected \(1, 4, 1, 2\)"):
        generate(scores, deltas[:, :3], torch.tensor([[32.0, 32.0, 1.0]]), anchors)
    with pytest.raises(OperatorInputError, match=r"im_info shape=\(3,\), expected \(1, 3\)"):
        run_single_op("GenerateProposals", [scores, deltas, torch.tensor([32.0, 32.0, 1.0]), anchors])
    with pytest.raises(OperatorArgumentError, match=r"GenerateProposals: spatial_scale=0.0, expected a positive float"):
        run_single_op("GenerateProposals", [scores, deltas, torch.tensor([[32.0, 32.0, 1.0]]), anchors], spatial_scale=0.0)
    rotated = torch.tensor([[8.0, 8.0, 16.0, 16.0, 0.0]])
    with pytest.raises(OperatorArgumentError, match=r"angle_bound_hi - angle_bound_lo=100, expected a positive multiple of 180"):
        generate(scores, torch.zeros(1, 5, 1, 2), torch.tensor([[32.0, 32.0, 1.0]]), rotated, angle_bound_hi=10)


def test_opcheck():
    scores, deltas, anchors = two_cells()
    args = (scores, deltas, torch.tensor([[32.0, 32.0, 1.0]]), anchors, 1 / 16, 6000, 300, 0.7, 0.0, True, -90, 90, 1.0, False)
    torch.library.opcheck(torch.ops._caffe2.GenerateProposals.default, args)
