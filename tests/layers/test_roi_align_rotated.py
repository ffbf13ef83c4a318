"""ROIAlignRotated against a per-bin Python loop from SPEC 5.4 and against upright ROIAlign."""

import pytest
import torch

from detectron2_export.layers import ROIAlign, ROIAlignRotated

from .roi_align_reference import naive_roi_align


@pytest.mark.parametrize("sampling_ratio", [0, 1, 2])
def test_matches_naive_loop(sampling_ratio):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 2, 10, 12, generator=g)
    n = 6
    rois = torch.cat(
        [
            torch.randint(0, 2, (n, 1), generator=g).float(),
            torch.rand(n, 2, generator=g) * torch.tensor([24.0, 20.0]),  # centres (scale 0.5)
            torch.rand(n, 2, generator=g) * 16 + 0.5,  # sizes
            torch.rand(n, 1, generator=g) * 360 - 180,  # angles
        ],
        dim=1,
    )
    out = ROIAlignRotated((3, 2), 0.5, sampling_ratio)(x, rois)
    expected = naive_roi_align(x, rois, (3, 2), 0.5, sampling_ratio, aligned=True, rotated=True)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_angle_zero_is_aligned_roi_align():
    x = torch.rand(1, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    # upright box x in [1, 7], y in [2, 5] as (cx, cy, w, h, 0)
    rotated = ROIAlignRotated((3, 3), 1.0, 2)(x, torch.tensor([[0.0, 4.0, 3.5, 6.0, 3.0, 0.0]]))
    upright = ROIAlign((3, 3), 1.0, 2, aligned=True)(x, torch.tensor([[0.0, 1.0, 2.0, 7.0, 5.0]]))
    torch.testing.assert_close(rotated, upright)


def test_angle_180_flips_bins():
    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    pool = ROIAlignRotated((2, 3), 1.0, 2)
    a = pool(x, torch.tensor([[0.0, 4.0, 4.0, 6.0, 4.0, 0.0]]))
    b = pool(x, torch.tensor([[0.0, 4.0, 4.0, 6.0, 4.0, 180.0]]))
    torch.testing.assert_close(b, a.flip(-1).flip(-2), rtol=1e-5, atol=1e-5)


def test_hand_computed_quarter_turn():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)  # 5y + x
    # centre (3, 3) -> (2.5, 2.5) after the half-pixel shift; 2x2 box, 1 sample per bin at
    # local (yy, xx) = (+-0.5, +-0.5); a 90 degree turn maps it to (y, x) = (yy*0 - xx, yy)
    out = ROIAlignRotated((2, 2), 1.0, 1)(x, torch.tensor([[0.0, 3.0, 3.0, 2.0, 2.0, 90.0]]))
    # bin (0,0): (yy, xx) = (-0.5, -0.5) -> y = 2.5 + 0.5, x = 2.5 - 0.5 -> 5*3 + 2 = 17
    expected = torch.tensor([[[[17.0, 12.0], [18.0, 13.0]]]])
    torch.testing.assert_close(out, expected)


def test_empty_and_repr():
    pool = ROIAlignRotated(7, 0.25, 0)
    assert pool(torch.rand(1, 2, 4, 4), torch.zeros(0, 6)).shape == (0, 2, 7, 7)
    assert repr(pool) == "ROIAlignRotated(output_size=7, spatial_scale=0.25, sampling_ratio=0)"
    with pytest.raises(AssertionError):
        pool(torch.rand(1, 2, 4, 4), torch.zeros(1, 5))
