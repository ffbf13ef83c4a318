import pytest
import torch

import detectron2_export.caffe2.library  # noqa: F401  (defines torch.ops._caffe2)
from detectron2_export.errors import OperatorInputError
from tests.caffe2.helpers import run_single_op


def quadratic_map(size, x0, y0, peak, a=1.0, b=0.5, e=0.2):
    """f(x, y) = peak - a dx^2 - b dy^2 + e dx dy: its 3x3 Taylor fit is exact."""
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    dx, dy = xs - x0, ys - y0
    return (peak - a * dx**2 - b * dy**2 + e * dx * dy).float()


def test_quadratic_peak_has_exact_subpixel_maximum():
    heatmap = quadratic_map(8, 3.3, 4.6, 2.0)
    boxes = torch.tensor([[10.0, 20.0, 90.0, 60.0]])  # 80 x 40 over an 8 x 8 heatmap
    (kp,) = run_single_op("HeatmapMaxKeypoint", [heatmap.view(1, 1, 8, 8), boxes], should_output_softmax=True)
    assert kp.shape == (1, 4, 1)
    x, y, score, prob = kp[0, :, 0].tolist()
    assert x == pytest.approx(10 + (0.5 + 3.3) * 10, abs=1e-4)
    assert y == pytest.approx(20 + (0.5 + 4.6) * 5, abs=1e-4)
    assert score == pytest.approx(2.0, abs=1e-4)
    assert prob == pytest.approx(torch.softmax(heatmap.reshape(-1), 0).max().item(), rel=1e-5)


def test_border_neighbours_are_mirrored():
    ys, xs = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    rising = 3.0 - (ys - 2.3) ** 2 + 0.5 * xs  # maximum on the last column
    falling = 3.0 - (ys - 2.3) ** 2 - 0.5 * xs  # maximum on the first column
    (kp,) = run_single_op("HeatmapMaxKeypoint", [torch.stack((rising, falling)).view(1, 2, 6, 6), torch.tensor([[0.0, 0, 12, 12]])])
    # mirroring makes the x gradient vanish: no x offset; y is fitted exactly
    torch.testing.assert_close(kp[0, 0], torch.tensor([(0.5 + 5) * 2, 0.5 * 2]))
    torch.testing.assert_close(kp[0, 1], torch.tensor([(0.5 + 2.3) * 2, (0.5 + 2.3) * 2]), atol=1e-4, rtol=0)
    torch.testing.assert_close(kp[0, 2], torch.tensor([3.0 + 2.5, 3.0]), atol=1e-4, rtol=0)
    assert kp[0, 3].tolist() == [0.0, 0.0]  # the op's default: no softmax


def test_flat_heatmap_is_singular():
    (kp,) = run_single_op("HeatmapMaxKeypoint", [torch.full((1, 1, 4, 4), 0.25), torch.tensor([[0.0, 0, 0.5, 8]])],
                          should_output_softmax=True)
    # first maximum (0, 0), no offset, raw score; the box width is raised to 1
    torch.testing.assert_close(kp[0, :, 0], torch.tensor([0.5 / 4, 0.5 * 8 / 4, 0.25, 1 / 16]))


def test_large_offset_is_clipped_to_one_and_a_half_cells():
    heatmap = torch.full((5, 5), -5.0)
    neighbourhood = torch.tensor([[0.6, 0.5, 0.0], [0.999, 1.0, 0.899], [0.0, 0.5, 0.6]])
    heatmap[1:4, 1:4] = neighbourhood
    (kp,) = run_single_op("HeatmapMaxKeypoint", [heatmap.view(1, 1, 5, 5), torch.tensor([[0.0, 0, 5, 5]])])
    # A = [[-0.102, 0.3], [0.3, -1]], b = (0.05, 0): delta = (-4.17, -1.25), rescaled to (-1.5, -0.45)
    x, y, score, _ = kp[0, :, 0].tolist()
    assert x == pytest.approx(0.5 + 2 - 1.5, abs=1e-4)
    assert y == pytest.approx(0.5 + 2 - 0.45, abs=1e-4)
    assert score == pytest.approx(1.0615, abs=1e-4)


def test_many_boxes_and_keypoints_layout():
    g = torch.Generator().manual_seed(0)
    heatmaps = torch.randn(3, 4, 7, 7, generator=g)
    boxes = torch.tensor([[0.0, 0, 70, 70], [10, 10, 24, 38], [5, 5, 6, 6]])
    kp = torch.ops._caffe2.HeatmapMaxKeypoint(heatmaps, boxes)  # schema default: with softmax
    assert kp.shape == (3, 4, 4)
    for r in range(3):
        for k in range(4):
            (single,) = run_single_op("HeatmapMaxKeypoint", [heatmaps[r:r + 1, k:k + 1], boxes[r:r + 1]],
                                      should_output_softmax=True)
            torch.testing.assert_close(kp[r, :, k], single[0, :, 0])


def test_bad_shapes():
    with pytest.raises(OperatorInputError, match=r"HeatmapMaxKeypoint: heatmaps shape=\(1, 1, 4, 5\), expected \(R, K, S, S\)"):
        run_single_op("HeatmapMaxKeypoint", [torch.zeros(1, 1, 4, 5), torch.zeros(1, 4)])
    with pytest.raises(OperatorInputError, match=r"bboxes_in shape=\(2, 4\), expected \(1, >=4\)"):
        run_single_op("HeatmapMaxKeypoint", [torch.zeros(1, 1, 4, 4), torch.zeros(2, 4)])


def test_opcheck():
    torch.library.opcheck(torch.ops._caffe2.HeatmapMaxKeypoint.default,
                          (torch.randn(2, 3, 6, 6), torch.tensor([[0.0, 0, 6, 6], [1, 1, 9, 4]]), True))
