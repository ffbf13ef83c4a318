"""ROIAlign against a hand-computed case and a per-bin Python loop written from SPEC 5.4."""

import pytest
import torch

from detectron2_export.layers import ROIAlign

from .roi_align_reference import naive_roi_align


def _random_rois(n, hw, batch, g):
    h, w = hw
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) - 2  # some start outside the image
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) * 0.8
    wh[0] = 0.4  # smaller than one pixel: exercises the max(roi, 1) rule when not aligned
    b = torch.randint(0, batch, (n, 1), generator=g).float()
    return torch.cat([b, xy, xy + wh], dim=1)


def test_hand_computed():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)  # value at (y, x) is 5y + x
    rois = torch.tensor([[0.0, 1.0, 1.0, 3.0, 3.0]])
    # aligned: the box becomes [0.5, 2.5]^2, one sample per bin lands on pixels 1 and 2
    y = ROIAlign((2, 2), 1.0, 1, aligned=True)(x, rois)
    torch.testing.assert_close(y, torch.tensor([[[[6.0, 7.0], [11.0, 12.0]]]]))
    # not aligned: samples at 1.5 and 2.5; the bilinear sample of the linear ramp is 5y + x
    y = ROIAlign((2, 2), 1.0, 1, aligned=False)(x, rois)
    torch.testing.assert_close(y, torch.tensor([[[[9.0, 10.0], [14.0, 15.0]]]]))
    # spatial_scale 0.5 on a box twice as large gives the same samples
    y = ROIAlign(2, 0.5, 1, aligned=False)(x, rois * torch.tensor([1.0, 2, 2, 2, 2]))
    torch.testing.assert_close(y, torch.tensor([[[[9.0, 10.0], [14.0, 15.0]]]]))


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
def test_matches_naive_loop(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 12, 16, generator=g)
    rois = _random_rois(6, (24, 32), batch=2, g=g)
    pooler = ROIAlign((3, 4), 0.5, sampling_ratio, aligned=aligned)
    torch.testing.assert_close(
        pooler(x, rois), naive_roi_align(x, rois, (3, 4), 0.5, sampling_ratio, aligned), rtol=1e-5, atol=1e-5
    )


def test_empty_rois_and_dtype_and_repr():
    x = torch.rand(1, 2, 4, 4)
    assert ROIAlign((7, 7), 1.0, 0)(x, torch.zeros(0, 5)).shape == (0, 2, 7, 7)
    # rois are cast to the feature dtype
    out = ROIAlign((2, 2), 1.0, 0)(x.double(), torch.tensor([[0.0, 0, 0, 4, 4]]))
    assert out.dtype == torch.float64
    assert repr(ROIAlign((7, 7), 0.25, 0)) == (
        "ROIAlign(output_size=(7, 7), spatial_scale=0.25, sampling_ratio=0, aligned=True)"
    )
    with pytest.raises(AssertionError):
        ROIAlign((2, 2), 1.0, 0)(x, torch.zeros(1, 4))
