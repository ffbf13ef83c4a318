import math

import pytest
import torch
import torchvision

from detectron2_export.caffe2.ops.box_utils import (
    bbox_transform,
    clip_boxes,
    filter_boxes,
    nms,
    rotated_intersections,
    rotated_ious,
    soft_nms,
    upright_ious,
)


def T(*rows):
    return torch.tensor(rows, dtype=torch.float32)


# ---------------------------------------------------------------------------------------------
# decoding
# ---------------------------------------------------------------------------------------------


def test_decode_upright_legacy_plus_one():
    # w = h = 10 (9 - 0 + 1), centre (5, 5); centre moves by (1, 2), width doubles
    out = bbox_transform(T([0, 0, 9, 9]), T([0.1, 0.2, math.log(2), 0]), legacy_plus_one=True)
    torch.testing.assert_close(out, T([-4, 2, 15, 11]))


def test_decode_upright_no_plus_one_and_weights():
    out = bbox_transform(T([0, 0, 10, 10]), T([1, 2, 5 * math.log(2), 0]), (10, 10, 5, 5), legacy_plus_one=False)
    torch.testing.assert_close(out, T([-4, 2, 16, 12]))


def test_decode_clamps_log_size_delta():
    # dw = 10 is clamped to log(1000 / 16): the width grows 62.5x, not e^10 x
    out = bbox_transform(T([0, 0, 10, 10]), T([0, 0, 10, 0]), legacy_plus_one=False)
    torch.testing.assert_close(out, T([-307.5, 0, 317.5, 10]))


def test_decode_broadcasts_classes():
    boxes = T([0, 0, 10, 10]).unsqueeze(1)  # (1, 1, 4)
    deltas = torch.stack((T([0, 0, 0, 0]), T([0.1, 0, 0, 0]))).unsqueeze(0)  # (1, 2, 4)
    out = bbox_transform(boxes, deltas)
    torch.testing.assert_close(out, torch.stack((T([0, 0, 10, 10]), T([1, 0, 11, 10]))).unsqueeze(0))


@pytest.mark.parametrize(
    "bound_on, lo, hi, expected_angle", [(True, -90, 90, -80.0), (False, -90, 90, 100.0), (True, -180, 180, 100.0)]
)
def test_decode_rotated_with_angle_bounds(bound_on, lo, hi, expected_angle):
    out = bbox_transform(
        T([10, 20, 4, 2, 80]), T([0.5, -0.5, math.log(2), 0, math.pi / 9]),
        angle_bound_on=bound_on, angle_bound_lo=lo, angle_bound_hi=hi,
    )
    torch.testing.assert_close(out, T([12, 19, 8, 2, expected_angle]), atol=1e-4, rtol=0)


# ---------------------------------------------------------------------------------------------
# clipping and filtering
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy, expected", [(True, [0, 0, 7, 9]), (False, [0, 0, 8, 10])])
def test_clip_upright(legacy, expected):
    out = clip_boxes(T([-5, -3, 12, 20]), 10, 8, legacy_plus_one=legacy)
    torch.testing.assert_close(out, T(expected))


def test_clip_upright_per_row_sizes():
    boxes = T([-5, -3, 12, 20], [-5, -3, 12, 20])
    out = clip_boxes(boxes, torch.tensor([10, 20]), torch.tensor([8, 30]))
    torch.testing.assert_close(out, T([0, 0, 8, 10], [0, 0, 12, 20]))


@pytest.mark.parametrize("legacy, expected", [(False, [5, 5, 10, 4, 0.5]), (True, [4.5, 5, 10, 4, 0.5])])
def test_clip_rotated_only_near_upright(legacy, expected):
    boxes = T([5, 5, 20, 4, 0.5], [5, 5, 20, 4, 30])
    out = clip_boxes(boxes, 10, 10, clip_angle_thresh=1.0, legacy_plus_one=legacy)
    torch.testing.assert_close(out, T(expected, [5, 5, 20, 4, 30]))


def test_filter_min_size_is_scaled_and_centre_inside():
    im_info = T(100, 80, 2.0)  # min_size 5 -> 10 pixels
    boxes = T([0, 0, 10, 10], [0, 0, 9.9, 20], [75, 0, 90, 20], [70, 0, 85, 20])
    keep = filter_boxes(boxes, 5.0, im_info, legacy_plus_one=False)
    assert keep.tolist() == [True, False, False, True]
    # with legacy_plus_one the second box is 10.9 wide
    assert filter_boxes(boxes, 5.0, im_info, legacy_plus_one=True).tolist() == [True, True, False, True]


# ---------------------------------------------------------------------------------------------
# NMS
# ---------------------------------------------------------------------------------------------


def naive_caffe2_nms(boxes, thresh, top_n=-1, plus=0.0):
    """Greedy NMS straight from Caffe2's nms_cpu_upright, in Python floats."""
    b = boxes.tolist()
    order = list(range(len(b)))
    keep = []
    while order:
        if 0 <= top_n <= len(keep):
            break
        i = order[0]
        keep.append(i)
        rest = []
        for j in order[1:]:
            w = max(min(b[i][2], b[j][2]) - max(b[i][0], b[j][0]) + plus, 0.0)
            h = max(min(b[i][3], b[j][3]) - max(b[i][1], b[j][1]) + plus, 0.0)
            inter = w * h
            area_i = (b[i][2] - b[i][0] + plus) * (b[i][3] - b[i][1] + plus)
            area_j = (b[j][2] - b[j][0] + plus) * (b[j][3] - b[j][1] + plus)
            union = area_i + area_j - inter
            ovr = inter / union if union != 0 else math.nan
            if ovr <= thresh:
                rest.append(j)
        order = rest
    return keep


@pytest.mark.parametrize("legacy, expected", [(False, [0, 1]), (True, [0])])
def test_nms_legacy_plus_one_changes_overlap(legacy, expected):
    # touching unit boxes: IoU 0 without the +1, 2/6 with it
    boxes = T([0, 0, 1, 1], [1, 0, 2, 1])
    assert nms(boxes, 0.3, legacy_plus_one=legacy).tolist() == expected


def test_nms_zero_area_boxes_follow_caffe2_nan_rule():
    # IoU of two zero-area boxes is 0/0: Caffe2 keeps a box only if IoU <= thresh, so it suppresses
    boxes = T([0, 0, 0, 5], [0, 0, 0, 5], [10, 10, 20, 20], [3, 0, 3, 3])
    assert nms(boxes, 0.5).tolist() == [0, 2]
    # (torchvision's `IoU > thresh` rule would keep all four)
    assert torchvision.ops.nms(boxes, -torch.arange(4.0), 0.5).tolist() == [0, 1, 2, 3]


def test_nms_top_n_stops_early():
    boxes = T([0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21], [0, 0, 1, 1])
    assert nms(boxes, 0.5, top_n=2).tolist() == [0, 1]
    assert nms(boxes, 0.5, top_n=0).tolist() == []
    assert nms(boxes, 0.5).tolist() == [0, 1, 2]


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("degenerate", [False, True])
def test_nms_matches_naive_greedy(legacy, degenerate):
    g = torch.Generator().manual_seed(3)
    xy = torch.rand(300, 2, generator=g) * 100
    wh = torch.rand(300, 2, generator=g) * 30
    boxes = torch.cat((xy, xy + wh), dim=1)
    if degenerate:  # zero-width and inverted boxes take the exact slow path
        boxes[::7, 2] = boxes[::7, 0]
        boxes[::11, 3] = boxes[::11, 1] - 2
    for top_n in (-1, 40):
        expected = naive_caffe2_nms(boxes, 0.5, top_n, float(legacy))
        assert nms(boxes, 0.5, top_n, legacy_plus_one=legacy).tolist() == expected


def test_upright_ious_hand_computed():
    ious = upright_ious(T(0, 0, 10, 10), T([5, 0, 15, 10], [20, 20, 30, 30]))
    torch.testing.assert_close(ious, T(50 / 150, 0))


# ---------------------------------------------------------------------------------------------
# rotated boxes
# ---------------------------------------------------------------------------------------------


def test_rotated_intersections_hand_computed():
    square = T(0, 0, 2, 2, 0)
    others = T([1, 1, 2, 2, 0], [0, 0, 2, 2, 45], [5, 5, 1, 1, 10], [0, 0, 2, 2, 0], [0, 0, 2, 2, 90])
    inter = rotated_intersections(square, others)
    # quarter overlap; regular octagon 8 (sqrt(2) - 1); disjoint; identical; identical after 90 deg
    torch.testing.assert_close(inter, torch.tensor([1.0, 8 * (math.sqrt(2) - 1), 0.0, 4.0, 4.0], dtype=torch.float64))


def test_rotated_ious_match_upright_for_axis_aligned_boxes():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(50, 2, generator=g) * 20
    wh = torch.rand(50, 2, generator=g) * 10 + 1
    upright = torch.cat((xy, xy + wh), dim=1)
    rotated = torch.cat((xy + wh / 2, wh, torch.zeros(50, 1)), dim=1)
    # a 90 degree turn with swapped sides is the same box
    turned = torch.cat((xy + wh / 2, wh.flip(1), torch.full((50, 1), 90.0)), dim=1)
    expected = upright_ious(upright[0], upright[1:])
    torch.testing.assert_close(rotated_ious(rotated[0], rotated[1:]), expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(rotated_ious(rotated[0], turned[1:]), expected, atol=1e-5, rtol=0)


def test_rotated_nms():
    boxes = T([0, 0, 10, 2, 0], [0, 0, 10, 2, 5], [0, 0, 10, 2, 90], [50, 50, 4, 4, 30])
    # a 5 degree turn overlaps a lot; the 90 degree cross overlaps 4 / 36
    assert nms(boxes, 0.5).tolist() == [0, 2, 3]
    assert nms(boxes, 0.05).tolist() == [0, 3]


# ---------------------------------------------------------------------------------------------
# Soft-NMS
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method, b_score", [("linear", 0.4), ("gaussian", 0.8 * math.exp(-0.5))])
def test_soft_nms(method, b_score):
    boxes = T([0, 0, 10, 10], [0, 0, 10, 5], [20, 20, 30, 30])  # IoU(A, B) = 0.5
    scores = T(0.9, 0.8, 0.7)
    keep, new_scores = soft_nms(
        boxes, scores, torch.arange(3), sigma=0.5, overlap_thresh=0.3, score_thresh=0.001, method=method
    )
    assert keep.tolist() == [0, 2, 1]
    torch.testing.assert_close(new_scores, T(0.9, b_score, 0.7))


def test_soft_nms_drops_boxes_below_min_score():
    boxes = T([0, 0, 10, 10], [0, 0, 10, 10])
    keep, new_scores = soft_nms(
        boxes, T(0.9, 0.8), torch.arange(2), sigma=0.5, overlap_thresh=0.3, score_thresh=0.001, method="linear"
    )
    # identical boxes: weight 1 - 1 = 0, below the minimum score
    assert keep.tolist() == [0] and new_scores[1].item() == 0.0
