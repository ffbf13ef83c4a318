import pytest
import torch
import torch.nn.functional as F

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op

X = torch.arange(6.0).view(1, 1, 2, 3)


def test_resize_nearest_non_integer_scale():
    (y,) = run_single_op("ResizeNearest", [X], width_scale=1.5, height_scale=2.0)
    # W: int(3 * 1.5) = 4 columns reading int(x / 1.5) = 0, 0, 1, 2; H: rows 0, 0, 1, 1
    torch.testing.assert_close(y[0, 0], torch.tensor([[0.0, 0, 1, 2], [0, 0, 1, 2], [3, 3, 4, 5], [3, 3, 4, 5]]))


def test_resize_nearest_downscale_and_defaults():
    (y,) = run_single_op("ResizeNearest", [torch.arange(5.0).view(1, 1, 1, 5)], width_scale=0.5)
    torch.testing.assert_close(y, torch.tensor([[[[0.0, 2.0]]]]))
    (same,) = run_single_op("ResizeNearest", [X])
    torch.testing.assert_close(same, X)


def test_resize_nearest_scales_input_overrides_arguments():
    (y,) = run_single_op("ResizeNearest", [X, torch.tensor([2.0, 1.5])], width_scale=3.0, height_scale=3.0)
    torch.testing.assert_close(y, run_single_op("ResizeNearest", [X], width_scale=1.5, height_scale=2.0)[0])


def test_resize_nearest_nhwc_and_integer_scale_matches_interpolate():
    x = torch.rand(2, 3, 5, 4)
    (nchw,) = run_single_op("ResizeNearest", [x], width_scale=2.0, height_scale=2.0)
    torch.testing.assert_close(nchw, F.interpolate(x, scale_factor=2, mode="nearest"))
    (nhwc,) = run_single_op("ResizeNearest", [x.permute(0, 2, 3, 1)], width_scale=2.0, height_scale=2.0, order="NHWC")
    torch.testing.assert_close(nhwc, nchw.permute(0, 2, 3, 1))


def test_resize_nearest_errors():
    with pytest.raises(OperatorArgumentError, match=r"ResizeNearest: width_scale=0.0, expected a positive float"):
        run_single_op("ResizeNearest", [X], width_scale=0.0)
    with pytest.raises(OperatorInputError, match=r"ResizeNearest: scales shape=\(3,\), expected \(2,\)"):
        run_single_op("ResizeNearest", [X, torch.ones(3)])


def test_upsample_nearest():
    (y,) = run_single_op("UpsampleNearest", [X], scale=2)
    torch.testing.assert_close(y, X.repeat_interleave(2, 2).repeat_interleave(2, 3))
    (z,) = run_single_op("UpsampleNearest", [X[0]], scale=3)
    assert z.shape == (1, 6, 9) and z[0, 5, 8].item() == 5.0


def test_upsample_bilinear_hand_computed_corner_aligned():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    (y,) = run_single_op("UpsampleBilinear", [x], width_scale=2.0, height_scale=2.0)
    # source coordinates dst * (2 - 1) / (4 - 1); the map is linear (2 y + x), so is the result
    src = torch.tensor([0.0, 1 / 3, 2 / 3, 1.0])
    torch.testing.assert_close(y[0, 0], 2 * src[:, None] + src[None, :])


def test_upsample_bilinear_is_align_corners_true():
    x = torch.rand(2, 3, 3, 4)
    (y,) = run_single_op("UpsampleBilinear", [x, torch.tensor([1.5, 2.5])])  # scales input: 4 x 10
    expected = F.interpolate(x, size=(4, 10), mode="bilinear", align_corners=True)
    torch.testing.assert_close(y, expected)
    assert not torch.allclose(y, F.interpolate(x, size=(4, 10), mode="bilinear", align_corners=False))


def test_opcheck():
    torch.library.opcheck(torch.ops._caffe2.ResizeNearest.default, (torch.rand(1, 2, 3, 4), "NCHW", 1.5, 2.0))
