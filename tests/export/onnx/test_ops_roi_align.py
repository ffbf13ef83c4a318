"""``ops.roi_align``: the ONNX RoiAlign node (half_pixel / output_half_pixel, avg) against
torchvision's ``roi_align`` (detectron2's ROIAlignV2 / ROIAlign), in torch and exported."""

import pytest
import torch
from torch import nn
from torchvision.ops import roi_align as tv_roi_align

from detectron2_export.export.onnx.ops import roi_align

from .helpers import OnnxFunction, dynamic, op_types

ATOL = 1e-5


class RoiAlign(nn.Module):
    def __init__(self, output_size: int, spatial_scale: float, sampling_ratio: int, aligned: bool) -> None:
        super().__init__()
        self.args = (output_size, spatial_scale, sampling_ratio, aligned)

    def forward(self, features, boxes, batch_indices):
        return roi_align(features, boxes, batch_indices, *self.args)


def _case(n: int, c: int, h: int, w: int, r: int, scale: float, seed: int):
    """Random features and boxes in input pixels: inside, touching the image edges, partly outside,
    tiny (below one feature pixel) and degenerate."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(n, c, h, w, generator=g)
    height, width = h / scale, w / scale
    xy = torch.rand(r, 2, generator=g) * torch.tensor([width, height])
    wh = torch.rand(r, 2, generator=g) * torch.tensor([width, height]) * 0.6
    boxes = torch.cat([xy, xy + wh], dim=1)
    special = torch.tensor(
        [
            [0.0, 0.0, width, height],  # the whole image
            [width * 0.5, height * 0.5, width, height],  # touching the bottom-right edge
            [-0.3 * width, -0.2 * height, 0.4 * width, 0.5 * height],  # partly outside
            [1.0, 1.0, 1.2, 1.3],  # tiny
            [2.0, 2.0, 2.0, 2.0],  # empty
        ]
    )
    boxes = torch.cat([special, boxes])
    batch_indices = torch.randint(0, n, (boxes.shape[0],), generator=g)
    return features, boxes, batch_indices


def _torchvision(features, boxes, batch_indices, *args):
    return tv_roi_align(features, torch.cat([batch_indices[:, None].float(), boxes], dim=1), *args)


@pytest.mark.parametrize("aligned, expected", [(True, [2.5, 4.5]), (False, [3.0, 5.0])])
def test_hand_case_on_a_linear_map(aligned, expected):
    """On f(y, x) = x bilinear sampling is exact, so each bin is the value at its centre: box x from
    2 to 6 in 2 bins has centres 3 and 5, shifted by -0.5 pixel when aligned (half_pixel)."""
    features = torch.arange(10.0).expand(1, 1, 8, 10).contiguous()
    out = roi_align(features, torch.tensor([[2.0, 1.0, 6.0, 5.0]]), torch.tensor([0]), 2, 1.0, 2, aligned)
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out[0, 0], torch.tensor([expected, expected]), rtol=0, atol=1e-6)


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_torch_and_onnx_equal_torchvision(aligned, sampling_ratio):
    scale = 0.25
    args = (3, scale, sampling_ratio, aligned)
    names = ["features", "boxes", "batch_indices", "pooled"]
    fn = OnnxFunction(
        RoiAlign(*args), _case(2, 3, 10, 12, 4, scale, seed=0), names[:3], names[3:],
        dynamic(names, [0, 1, 2, 3], [0], [0], [0, 1]),
    )
    assert op_types(fn.model).count("RoiAlign") == 1
    for n, c, h, w, r in [(3, 2, 17, 9, 11), (1, 4, 6, 21, 2), (2, 1, 5, 5, 0)]:
        features, boxes, batch_indices = _case(n, c, h, w, r, scale, seed=h)
        expected = _torchvision(features, boxes, batch_indices, 3, scale, sampling_ratio, aligned)
        torch.testing.assert_close(roi_align(features, boxes, batch_indices, *args), expected, rtol=0, atol=0)
        got = torch.from_numpy(fn(features, boxes, batch_indices)[0])
        assert got.shape == (boxes.shape[0], c, 3, 3)
        torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


def test_onnx_with_no_boxes_gives_an_empty_result():
    names = ["features", "boxes", "batch_indices", "pooled"]
    fn = OnnxFunction(RoiAlign(2, 0.5, 0, True), _case(1, 2, 6, 6, 3, 0.5, seed=1), names[:3], names[3:], dynamic(names, [0, 2, 3], [0], [0], [0]))
    features = torch.randn(2, 2, 7, 5)
    got = fn(features, torch.zeros(0, 4), torch.zeros(0, dtype=torch.int64))[0]
    assert got.shape == (0, 2, 2, 2)
