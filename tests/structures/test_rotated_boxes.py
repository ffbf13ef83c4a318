"""RotatedBoxes on hand-made boxes."""

import math

import pytest
import torch

from detectron2_export.structures import BoxMode, RotatedBoxes


def test_constructor_area_nonempty():
    assert RotatedBoxes(torch.zeros(0)).tensor.shape == (0, 5)
    b = RotatedBoxes(torch.tensor([[5.0, 5, 4, 2, 30], [0, 0, 0, 3, 0]]))
    torch.testing.assert_close(b.area(), torch.tensor([8.0, 0]))
    assert b.nonempty().tolist() == [True, False]
    torch.testing.assert_close(b.get_centers(), torch.tensor([[5.0, 5], [0, 0]]))
    with pytest.raises(AssertionError):
        RotatedBoxes(torch.zeros(2, 4))


def test_clip_only_near_upright_boxes():
    b = RotatedBoxes(
        torch.tensor(
            [
                [1.0, 2, 4, 6, 0.5],  # near upright: x in [-1, 3] -> [0, 3], y in [-1, 5] -> [0, 5]
                [1.0, 2, 4, 6, 45],  # rotated: left alone
                [5.0, 5, 2, 2, 360],  # normalized to 0, already inside
            ]
        )
    )
    b.clip((10, 10))
    torch.testing.assert_close(
        b.tensor,
        torch.tensor([[1.5, 2.5, 3, 5, 0.5], [1.0, 2, 4, 6, 45], [5.0, 5, 2, 2, 0]]),
    )


def test_normalize_angles():
    b = RotatedBoxes(torch.tensor([[0.0, 0, 1, 1, 190], [0, 0, 1, 1, -180], [0, 0, 1, 1, 540]]))
    b.normalize_angles()
    assert b.tensor[:, 4].tolist() == [-170, -180, -180]


def test_scale():
    b = RotatedBoxes(torch.tensor([[2.0, 3, 4, 2, 0], [2, 3, 4, 2, 90], [2, 3, 4, 2, 30]]))
    b.scale(2.0, 3.0)
    # upright: width scales by sx, height by sy; at 90 degrees the roles swap
    torch.testing.assert_close(b.tensor[0], torch.tensor([4.0, 9, 8, 6, 0]))
    torch.testing.assert_close(b.tensor[1], torch.tensor([4.0, 9, 12, 4, 90]))
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    torch.testing.assert_close(
        b.tensor[2],
        torch.tensor(
            [
                4.0,
                9,
                4 * math.hypot(2 * c, 3 * s),
                2 * math.hypot(2 * s, 3 * c),
                math.degrees(math.atan2(2 * s, 3 * c)),
            ]
        ),
    )
    u = RotatedBoxes(torch.tensor([[2.0, 3, 4, 2, 30]]))
    u.scale(2.0, 2.0)  # a uniform scale keeps the angle
    torch.testing.assert_close(u.tensor, torch.tensor([[4.0, 6, 8, 4, 30]]))


def test_inside_box_uses_enclosing_rectangle():
    b = RotatedBoxes(torch.tensor([[5.0, 5, 8, 2, 0], [5, 5, 8, 2, 90], [5, 5, 12, 2, 0]]))
    # the 90-degree box spans y in [1, 9] and x in [4, 6]; the third is too wide
    assert b.inside_box((10, 10)).tolist() == [True, True, False]
    xyxy = BoxMode.convert(b.tensor[1:2], BoxMode.XYWHA_ABS, BoxMode.XYXY_ABS)
    torch.testing.assert_close(xyxy, torch.tensor([[4.0, 1, 6, 9]]))


def test_indexing_cat():
    b = RotatedBoxes(torch.arange(15.0).reshape(3, 5))
    assert len(b) == 3
    assert isinstance(b[0], RotatedBoxes) and b[0].tensor.shape == (1, 5)
    assert b[torch.tensor([False, True, True])].tensor[:, 0].tolist() == [5, 10]
    c = RotatedBoxes.cat([b, b[1:]])
    assert isinstance(c, RotatedBoxes) and c.tensor.shape == (5, 5)
    assert RotatedBoxes.cat([]).tensor.shape == (0, 5)
    assert b.clone().to("cpu").tensor.data_ptr() != b.tensor.data_ptr()
