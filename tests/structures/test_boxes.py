"""Boxes, BoxMode and the pairwise functions on hand-computed boxes."""

import numpy as np
import pytest
import torch

from detectron2_export.structures import (
    Boxes,
    BoxMode,
    matched_pairwise_iou,
    pairwise_intersection,
    pairwise_ioa,
    pairwise_iou,
    pairwise_point_box_distance,
)


def _boxes():
    # a: 10x10 at origin (area 100); b: 10x10 shifted by (5, 5) (area 100, overlap 25);
    # c: degenerate (zero width); d: 2x4 inside a (area 8)
    return Boxes(torch.tensor([[0.0, 0, 10, 10], [5, 5, 15, 15], [3, 3, 3, 8], [1, 2, 3, 6]]))


def test_constructor_accepts_empty_and_lists():
    assert Boxes(torch.zeros(0)).tensor.shape == (0, 4)
    assert Boxes(torch.zeros(0, 4, dtype=torch.float64)).tensor.dtype == torch.float32
    b = Boxes([[1, 2, 3, 4]])
    assert b.tensor.dtype == torch.float32 and b.tensor.tolist() == [[1, 2, 3, 4]]
    with pytest.raises(AssertionError):
        Boxes(torch.zeros(3, 5))


def test_area_nonempty_centers():
    b = _boxes()
    torch.testing.assert_close(b.area(), torch.tensor([100.0, 100, 0, 8]))
    assert b.nonempty().tolist() == [True, True, False, True]
    # threshold: d is 2 wide -> not > 2
    assert b.nonempty(threshold=2.0).tolist() == [True, True, False, False]
    torch.testing.assert_close(b.get_centers(), torch.tensor([[5.0, 5], [10, 10], [3, 5.5], [2, 4]]))


def test_clip_to_height_width():
    b = Boxes(torch.tensor([[-5.0, -1, 20, 7], [2, 3, 4, 30]]))
    b.clip((8, 12))  # (height, width)
    assert b.tensor.tolist() == [[0, 0, 12, 7], [2, 3, 4, 8]]
    with pytest.raises(AssertionError, match="infinite or NaN"):
        Boxes(torch.tensor([[0.0, 0, float("inf"), 1]])).clip((5, 5))


def test_inside_box_and_scale():
    b = Boxes(torch.tensor([[0.0, 0, 9, 9], [-1, 0, 5, 5], [0, 0, 10, 5]]))
    assert b.inside_box((10, 10)).tolist() == [True, False, False]
    assert b.inside_box((10, 10), boundary_threshold=1).tolist() == [True, True, True]
    b.scale(2.0, 0.5)
    assert b.tensor.tolist() == [[0, 0, 18, 4.5], [-2, 0, 10, 2.5], [0, 0, 20, 2.5]]


def test_indexing_len_iter_cat_clone():
    b = _boxes()
    assert len(b) == 4
    assert b[1].tensor.tolist() == [[5, 5, 15, 15]]
    assert b[1:3].tensor.shape == (2, 4)
    assert b[torch.tensor([True, False, False, True])].tensor[:, 0].tolist() == [0, 1]
    assert [t.tolist() for t in b][3] == [1, 2, 3, 6]
    c = Boxes.cat([b[0], b[2:]])
    assert c.tensor[:, 0].tolist() == [0, 3, 1]
    c.tensor[0, 0] = 99  # cat never shares storage
    assert b.tensor[0, 0] == 0
    assert Boxes.cat([]).tensor.shape == (0, 4)
    d = b.clone()
    d.tensor += 1
    assert b.tensor[0, 0] == 0
    assert b.to("cpu").device == torch.device("cpu")


def test_pairwise_iou_hand_values():
    b = _boxes()
    iou = pairwise_iou(b, b)
    expected = torch.tensor(
        [
            [1.0, 25 / 175, 0, 8 / 100],
            [25 / 175, 1, 0, 0],
            [0, 0, 0, 0],  # the empty box never overlaps, not even itself (0/0 -> 0)
            [8 / 100, 0, 0, 1],
        ]
    )
    torch.testing.assert_close(iou, expected)
    inter = pairwise_intersection(b, b)
    assert inter[0].tolist() == [100, 25, 0, 8]
    # ioa divides by the area of the second argument's box
    torch.testing.assert_close(pairwise_ioa(b[:1], b)[0], torch.tensor([1.0, 0.25, 0, 1.0]))


def test_pairwise_iou_matches_naive_loop():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(7, 2, generator=g) * 20
    wh = torch.rand(7, 2, generator=g) * 10
    b1 = Boxes(torch.cat([xy, xy + wh], 1))
    b2 = b1[torch.tensor([3, 1, 4, 1, 5])]
    iou = pairwise_iou(b1, b2)
    for i, p in enumerate(b1.tensor.tolist()):
        for j, q in enumerate(b2.tensor.tolist()):
            w = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            h = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            a = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - w * h
            assert abs(iou[i, j].item() - w * h / a) < 1e-6
    torch.testing.assert_close(matched_pairwise_iou(b1[:5], b2), torch.diagonal(iou[:5]))


def test_point_box_distance():
    d = pairwise_point_box_distance(torch.tensor([[2.0, 3.0]]), Boxes(torch.tensor([[0.0, 0, 10, 5]])))
    assert d.tolist() == [[[2, 3, 8, 2]]]


def test_boxmode_convert():
    assert BoxMode.convert([1, 2, 3, 4], BoxMode.XYWH_ABS, BoxMode.XYXY_ABS) == [1, 2, 4, 6]
    assert BoxMode.convert((1, 2, 4, 6), BoxMode.XYXY_ABS, BoxMode.XYWH_ABS) == (1, 2, 3, 4)
    arr = np.array([[1.0, 2, 4, 6]])
    out = BoxMode.convert(arr, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
    assert isinstance(out, np.ndarray) and out.tolist() == [[1, 2, 3, 4]]
    assert arr.tolist() == [[1, 2, 4, 6]]  # input untouched
    t = torch.tensor([[0.0, 0, 4, 2]])
    assert BoxMode.convert(t, BoxMode.XYWH_ABS, BoxMode.XYWHA_ABS).tolist() == [[2, 1, 4, 2, 0]]
    # a 4x2 box centred at (10, 10) rotated by 90 degrees covers 2x4 upright
    r = BoxMode.convert(torch.tensor([[10.0, 10, 4, 2, 90]]), BoxMode.XYWHA_ABS, BoxMode.XYXY_ABS)
    torch.testing.assert_close(r, torch.tensor([[9.0, 8, 11, 12]]))
    with pytest.raises(AssertionError, match="Relative"):
        BoxMode.convert(t, BoxMode.XYXY_REL, BoxMode.XYXY_ABS)
    with pytest.raises(NotImplementedError):
        BoxMode.convert(t, BoxMode.XYXY_ABS, BoxMode.XYWHA_ABS)
