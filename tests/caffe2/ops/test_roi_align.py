import multiprocessing
import os

import pytest
import torch
import torchvision

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op
from tests.layers.roi_align_reference import naive_roi_align


def random_rois(n, hw, batch, g, columns=5):
    h, w = hw
    xy = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) - 2
    wh = torch.rand(n, 2, generator=g) * torch.tensor([w, h]) / 2 + 0.3
    idx = torch.randint(0, batch, (n, 1), generator=g).float()
    if columns == 6:
        angle = torch.rand(n, 1, generator=g) * 180 - 90
        return torch.cat((idx, xy + wh / 2, wh, angle), dim=1)
    return torch.cat((idx, xy, xy + wh), dim=1)


def test_hand_computed_aligned():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)  # value at (y, x) is 5y + x
    rois = torch.tensor([[0.0, 1.0, 1.0, 3.0, 3.0]])
    (y,) = run_single_op("RoIAlign", [x, rois], pooled_h=2, pooled_w=2, sampling_ratio=1, aligned=True)
    # the half-pixel shift gives the box [0.5, 2.5]^2; one sample per bin lands on pixels (1..2, 1..2)
    torch.testing.assert_close(y, torch.tensor([[[[6.0, 7.0], [11.0, 12.0]]]]))


def test_hand_computed_not_aligned_small_roi_is_one_pixel():
    x = torch.arange(25.0).reshape(1, 1, 5, 5)
    # a 0.2-pixel box is forced to 1x1 starting at (2, 2); one bin, 1 sample at (2.5, 2.5)
    (y,) = run_single_op("RoIAlign", [x, torch.tensor([[2.0, 2.0, 2.2, 2.2]])], sampling_ratio=1, aligned=False)
    torch.testing.assert_close(y, torch.tensor([[[[15.0]]]]))


def test_adaptive_sampling_ratio_hand_computed():
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    # box [0, 4]^2 with 1x1 output: adaptive grid ceil(4) = 4 x 4 samples at 0.5, 1.5, ... (border ones clamped)
    (y,) = run_single_op("RoIAlign", [x, torch.tensor([[0.0, 0.0, 4.0, 4.0]])], sampling_ratio=-1)
    samples = [0.5, 1.5, 2.5, 3.0]  # 3.5 is past the last pixel centre and reads row/column 3
    expected = sum(4 * sy + sx for sy in samples for sx in samples) / 16
    torch.testing.assert_close(y.item(), expected)
    (y2,) = run_single_op("RoIAlign", [x, torch.tensor([[0.0, 0.0, 4.0, 4.0]])], sampling_ratio=1)
    torch.testing.assert_close(y2.item(), 4 * 2.0 + 2.0)  # one sample at the centre (2, 2)


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 1, 2])
def test_matches_naive_loop_reference(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    x, rois = torch.rand(2, 3, 12, 16, generator=g), random_rois(8, (12 * 4, 16 * 4), 2, g)
    (y,) = run_single_op("RoIAlign", [x, rois], spatial_scale=0.25, pooled_h=3, pooled_w=4,
                         sampling_ratio=sampling_ratio, aligned=aligned)
    torch.testing.assert_close(y, naive_roi_align(x, rois, (3, 4), 0.25, sampling_ratio, aligned))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_many_rois_split_across_threads_give_the_single_call_result(threads, monkeypatch):
    g = torch.Generator().manual_seed(3)
    x, rois = torch.rand(2, 4, 20, 24, generator=g), random_rois(200, (80, 96), 2, g)
    expected = torchvision.ops.roi_align(x, rois, (5, 5), 0.25, 0, True)  # one call, one thread
    calls = []
    original = torchvision.ops.roi_align

    def counting_roi_align(features, boxes, *args):
        calls.append(len(boxes))
        return original(features, boxes, *args)

    monkeypatch.setattr(torchvision.ops, "roi_align", counting_roi_align)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        (y,) = run_single_op("RoIAlign", [x, rois], spatial_scale=0.25, pooled_h=5, pooled_w=5, sampling_ratio=0, aligned=True)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(y, expected)
    assert len(calls) == threads and sum(calls) == 200


def test_nhwc_and_four_column_rois():
    g = torch.Generator().manual_seed(1)
    x, rois = torch.rand(1, 3, 10, 10, generator=g), random_rois(5, (10, 10), 1, g)
    (nchw,) = run_single_op("RoIAlign", [x, rois], pooled_h=2, pooled_w=3, aligned=True)
    (nhwc,) = run_single_op("RoIAlign", [x.permute(0, 2, 3, 1), rois[:, 1:]], order="NHWC", pooled_h=2, pooled_w=3,
                            aligned=True)
    torch.testing.assert_close(nhwc, nchw.permute(0, 2, 3, 1))


def test_empty_rois():
    (y,) = run_single_op("RoIAlign", [torch.rand(1, 3, 8, 8), torch.zeros(0, 5)], pooled_h=7, pooled_w=7)
    assert y.shape == (0, 3, 7, 7)


def test_errors():
    with pytest.raises(OperatorArgumentError, match=r"RoIAlign: pooled_h=0, expected an int >= 1"):
        run_single_op("RoIAlign", [torch.rand(1, 1, 4, 4), torch.zeros(1, 5)], pooled_h=0)
    with pytest.raises(OperatorInputError, match=r"RoIAlign: rois shape=\(1, 3\), expected \(R, 4\) or \(R, 5\)"):
        run_single_op("RoIAlign", [torch.rand(1, 1, 4, 4), torch.zeros(1, 3)])
    with pytest.raises(OperatorInputError, match=r"RoIAlign: roi 0 scaled size=\(-2.0, 2.0\), expected non-negative when aligned"):
        run_single_op("RoIAlign", [torch.rand(1, 1, 4, 4), torch.tensor([[0.0, 3.0, 0.0, 1.0, 2.0]])], aligned=True)


# ---------------------------------------------------------------------------------------------
# RoIAlignRotated
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_rotated_matches_naive_loop_reference(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(2)
    x, rois = torch.rand(2, 2, 10, 12, generator=g), random_rois(6, (20, 24), 2, g, columns=6)
    (y,) = run_single_op("RoIAlignRotated", [x, rois], spatial_scale=0.5, pooled_h=3, pooled_w=2,
                         sampling_ratio=sampling_ratio, aligned=aligned)
    torch.testing.assert_close(y, naive_roi_align(x, rois, (3, 2), 0.5, sampling_ratio, aligned, rotated=True))


def test_rotated_at_zero_angle_equals_torchvision_upright():
    g = torch.Generator().manual_seed(3)
    x, rois = torch.rand(1, 4, 16, 16, generator=g), random_rois(10, (16, 16), 1, g)
    centre_size = torch.cat(((rois[:, 1:3] + rois[:, 3:5]) / 2, rois[:, 3:5] - rois[:, 1:3]), dim=1)
    rotated = torch.cat((rois[:, :1], centre_size, torch.zeros(10, 1)), dim=1)
    (y,) = run_single_op("RoIAlignRotated", [x, rotated], pooled_h=4, pooled_w=4, sampling_ratio=-1, aligned=True)
    torch.testing.assert_close(y, torchvision.ops.roi_align(x, rois, (4, 4), 1.0, -1, True), atol=1e-5, rtol=1e-5)


def test_rotated_ninety_degrees_transposes_a_square_roi():
    x = torch.arange(36.0).reshape(1, 1, 6, 6)
    args = dict(pooled_h=2, pooled_w=2, sampling_ratio=1, aligned=True)
    (turned,) = run_single_op("RoIAlignRotated", [x, torch.tensor([[0.0, 3.0, 3.0, 4.0, 4.0, 90.0]])], **args)
    (upright,) = run_single_op("RoIAlignRotated", [x, torch.tensor([[0.0, 3.0, 3.0, 4.0, 4.0, 0.0]])], **args)
    # a quarter turn reads bin (ph, pw) where the upright RoI has bin (1 - pw, ph)
    torch.testing.assert_close(turned[0, 0], upright[0, 0].t().flip(1), atol=1e-4, rtol=0)


def test_opcheck():
    g = torch.Generator().manual_seed(4)
    x, rois = torch.rand(1, 2, 8, 8, generator=g), random_rois(3, (8, 8), 1, g)
    torch.library.opcheck(torch.ops._caffe2.RoIAlign.default, (x, rois, "NCHW", 1.0, 2, 2, -1, True))
    rotated = random_rois(3, (8, 8), 1, g, columns=6)
    torch.library.opcheck(torch.ops._caffe2.RoIAlignRotated.default, (x, rotated, "NCHW", 1.0, 2, 2, 2, True))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threaded_pooling_works_in_a_forked_child():
    g = torch.Generator().manual_seed(4)
    x, rois = torch.rand(1, 2, 16, 16, generator=g), random_rois(128, (64, 64), 1, g)
    args = dict(spatial_scale=0.25, pooled_h=2, pooled_w=2, sampling_ratio=0, aligned=True)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        (expected,) = run_single_op("RoIAlign", [x, rois], **args)  # the parent's pool now exists
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:  # the child must not wait on the parent's (absent) threads
            (got,) = pool.apply_async(run_single_op, ("RoIAlign", [x, rois]), args).get(timeout=60)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(got, expected)
