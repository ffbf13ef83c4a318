import math

import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorArgumentError, OperatorInputError
from tests.caffe2.helpers import run_single_op


def transform(rois, deltas, im_info, weights=(1.0, 1.0, 1.0, 1.0), *, apply_scale=True, rotated=False,
              angle_bound_on=True, angle_bound_lo=-90, angle_bound_hi=90, clip_angle_thresh=1.0, legacy_plus_one=True):
    return torch.ops._caffe2.BBoxTransform(
        rois, deltas, im_info, list(weights), apply_scale, rotated, angle_bound_on, angle_bound_lo,
        angle_bound_hi, clip_angle_thresh, legacy_plus_one,
    )


def test_hand_computed_weights_and_clip():
    rois = torch.tensor([[0.0, 0, 0, 9, 9]])
    deltas = torch.tensor([[1.0, 2.0, 5 * math.log(2), 0.0]])  # /(10, 10, 5, 5): (0.1, 0.2, log 2, 0)
    boxes, splits = transform(rois, deltas, torch.tensor([[100.0, 100.0, 1.0]]), (10, 10, 5, 5))
    # decoded (-4, 2, 15, 11), then x1 clipped to 0
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 2, 15, 11]]))
    torch.testing.assert_close(splits, torch.tensor([1.0]))


@pytest.mark.parametrize("apply_scale, expected", [(True, [20.0, 20, 60, 40]), (False, [10.0, 10, 30, 20])])
def test_apply_scale(apply_scale, expected):
    rois = torch.tensor([[0.0, 20, 20, 60, 40]])
    boxes, _ = transform(rois, torch.zeros(1, 4), torch.tensor([[200.0, 300.0, 2.0]]), apply_scale=apply_scale,
                         legacy_plus_one=False)
    torch.testing.assert_close(boxes, torch.tensor([expected]))


@pytest.mark.parametrize("legacy, expected", [(False, [280.0, 180, 300, 200]), (True, [280.0, 180, 298, 198])])
def test_clip_happens_in_unscaled_image(legacy, expected):
    # im_info (200, 300, 2): boxes are divided by 2, clipped to int(100 + .5) x int(150 + .5), scaled back
    rois = torch.tensor([[0.0, 280, 180, 320, 220]])
    boxes, _ = transform(rois, torch.zeros(1, 4), torch.tensor([[200.0, 300.0, 2.0]]), legacy_plus_one=legacy)
    torch.testing.assert_close(boxes, torch.tensor([expected]))


def test_classes_and_batch_splits():
    rois = torch.tensor([[0.0, 0, 0, 10, 10], [1.0, 0, 0, 10, 10], [1.0, 35, 35, 45, 45]])
    deltas = torch.zeros(3, 8)
    deltas[:, 4] = 0.1  # class 1 moves right by 0.1 * width (10)
    im_info = torch.tensor([[100.0, 100.0, 1.0], [40.0, 50.0, 1.0]])
    boxes, splits = transform(rois, deltas, im_info, legacy_plus_one=False)
    expected = torch.tensor([
        [0.0, 0, 10, 10, 1, 0, 11, 10],
        [0.0, 0, 10, 10, 1, 0, 11, 10],
        [35.0, 35, 45, 40, 36, 35, 46, 40],  # image 1 is 40 high, 50 wide
    ])
    torch.testing.assert_close(boxes, expected)
    torch.testing.assert_close(splits, torch.tensor([1.0, 2.0]))


def test_rois_without_batch_index():
    boxes, splits = transform(torch.tensor([[0.0, 0, 10, 10]]), torch.zeros(1, 4), torch.tensor([[20.0, 20.0, 1.0]]),
                              legacy_plus_one=False)
    torch.testing.assert_close(boxes, torch.tensor([[0.0, 0, 10, 10]]))
    with pytest.raises(OperatorInputError, match=r"BBoxTransform: im_info rows=2 with rois of 4 columns"):
        transform(torch.tensor([[0.0, 0, 10, 10]]), torch.zeros(1, 4), torch.ones(2, 3))


def test_rotated_angle_not_scaled_and_bounded():
    rois = torch.tensor([[0.0, 20, 20, 8, 4, 45], [0.0, 20, 20, 8, 4, 80]])
    deltas = torch.zeros(2, 5)
    deltas[1, 4] = math.pi / 9  # 80 + 20 = 100 -> -80
    boxes, _ = transform(rois, deltas, torch.tensor([[100.0, 100.0, 2.0]]), rotated=True)
    torch.testing.assert_close(boxes, torch.tensor([[20.0, 20, 8, 4, 45], [20.0, 20, 8, 4, -80]]), atol=1e-4, rtol=0)


def test_empty_rois():
    boxes, splits = transform(torch.zeros(0, 5), torch.zeros(0, 8), torch.tensor([[10.0, 10.0, 1.0]]))
    assert boxes.shape == (0, 8)
    torch.testing.assert_close(splits, torch.tensor([0.0]))


def detectron2_apply_deltas(boxes, deltas, weights, height, width):
    """detectron2's Box2BoxTransform.apply_deltas + Boxes.clip, in float64."""
    boxes, deltas = boxes.double(), deltas.double()
    widths, heights = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    ctr_x, ctr_y = boxes[:, 0] + 0.5 * widths, boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = weights
    dx, dy = deltas[:, 0::4] / wx, deltas[:, 1::4] / wy
    dw = (deltas[:, 2::4] / ww).clamp(max=math.log(1000.0 / 16))
    dh = (deltas[:, 3::4] / wh).clamp(max=math.log(1000.0 / 16))
    pcx, pcy = dx * widths[:, None] + ctr_x[:, None], dy * heights[:, None] + ctr_y[:, None]
    pw, ph = torch.exp(dw) * widths[:, None], torch.exp(dh) * heights[:, None]
    out = torch.stack((pcx - 0.5 * pw, pcy - 0.5 * ph, pcx + 0.5 * pw, pcy + 0.5 * ph), dim=2)
    out[..., 0::2] = out[..., 0::2].clamp(0, width)
    out[..., 1::2] = out[..., 1::2].clamp(0, height)
    return out.reshape(boxes.shape[0], -1).float()


def test_matches_detectron2_box2box_transform():
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(20, 2, generator=g) * 80
    boxes = torch.cat((xy, xy + torch.rand(20, 2, generator=g) * 40 + 1), dim=1)
    deltas = torch.randn(20, 12, generator=g)
    rois = torch.cat((torch.zeros(20, 1), boxes), dim=1)
    out, _ = transform(rois, deltas, torch.tensor([[90.0, 110.0, 1.0]]), (10, 10, 5, 5), legacy_plus_one=False)
    torch.testing.assert_close(out, detectron2_apply_deltas(boxes, deltas, (10, 10, 5, 5), 90, 110), atol=1e-4, rtol=1e-5)


def test_runtime_defaults_and_optional_output():
    rois = torch.tensor([[0.0, 0, 0, 9, 9]])
    deltas = torch.tensor([[0.1, 0.2, math.log(2), 0.0]])
    im_info = torch.tensor([[100.0, 100.0, 1.0]])
    (boxes,) = run_single_op("BBoxTransform", [rois, deltas, im_info], num_outputs=1)
    # defaults: unit weights, legacy_plus_one, apply_scale
    torch.testing.assert_close(boxes, transform(rois, deltas, im_info)[0])
    boxes, splits = run_single_op("BBoxTransform", [rois, deltas * 10, im_info], weights=[10.0, 10.0, 1.0, 1.0],
                                  legacy_plus_one=False)
    torch.testing.assert_close(boxes, transform(rois, deltas * 10, im_info, (10, 10, 1, 1), legacy_plus_one=False)[0])
    with pytest.raises(OperatorArgumentError, match=r"BBoxTransform: weights=\[1.0, 1.0\], expected a list of 4 floats"):
        run_single_op("BBoxTransform", [rois, deltas, im_info], weights=[1.0, 1.0])
    with pytest.raises(OperatorInputError, match=r"BBoxTransform: deltas shape=\(1, 3\), expected \(1, 4 \* K\)"):
        run_single_op("BBoxTransform", [rois, deltas[:, :3], im_info])


def test_opcheck():
    rois = torch.tensor([[0.0, 0, 0, 9, 9], [0.0, 5, 5, 20, 30]])
    args = (rois, torch.randn(2, 8), torch.tensor([[50.0, 50.0, 1.0]]), [10.0, 10.0, 5.0, 5.0], True, False, True,
            -90, 90, 1.0, False)
    torch.library.opcheck(torch.ops._caffe2.BBoxTransform.default, args)
