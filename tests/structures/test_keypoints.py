"""heatmaps_to_keypoints on one-hot heatmaps (positions by hand) and Keypoints basics."""

import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from detectron2_export.structures import Keypoints, heatmaps_to_keypoints


def test_one_hot_peak_same_size_box():
    # box 8x8 and an 8x8 map: the bicubic resize is the identity.
    maps = torch.zeros(1, 2, 8, 8)
    maps[0, 0, 3, 5] = 4.0  # keypoint 0 peak at row 3, column 5
    maps[0, 1, 0, 7] = 2.0  # keypoint 1 peak at row 0, column 7
    rois = torch.tensor([[10.0, 20.0, 18.0, 28.0]])
    out = heatmaps_to_keypoints(maps, rois)
    assert out.shape == (1, 2, 4)
    # x = (col + 0.5) * w / ceil(w) + x0
    torch.testing.assert_close(out[0, :, 0], torch.tensor([10 + 5.5, 10 + 7.5]))
    torch.testing.assert_close(out[0, :, 1], torch.tensor([20 + 3.5, 20 + 0.5]))
    torch.testing.assert_close(out[0, :, 2], torch.tensor([4.0, 2.0]))  # the logit
    # score: exp(0) / (exp(0) + 63 exp(-peak)) (normalised over the 8x8 pool map)
    expected = torch.tensor([1 / (1 + 63 * math.exp(-4)), 1 / (1 + 63 * math.exp(-2))])
    torch.testing.assert_close(out[0, :, 3], expected)


def test_fractional_box_uses_width_correction():
    maps = torch.zeros(1, 1, 8, 8)
    maps[0, 0, 6, 2] = 3.0
    rois = torch.tensor([[1.0, 2.0, 8.5, 10.0]])  # w = 7.5 -> ceil 8 (map unchanged), h = 8
    out = heatmaps_to_keypoints(maps, rois)
    torch.testing.assert_close(out[0, 0, 0], torch.tensor(1.0 + 2.5 * 7.5 / 8))
    torch.testing.assert_close(out[0, 0, 1], torch.tensor(2.0 + 6.5))


def test_tiny_box_clamped_to_one_pixel():
    maps = torch.zeros(1, 1, 4, 4)
    maps[0, 0, 1, 1] = 5.0
    out = heatmaps_to_keypoints(maps, torch.tensor([[3.0, 4.0, 3.2, 4.1]]))
    # width/height clamp to 1: the map is resized to 1x1 and the keypoint lands at the box centre
    torch.testing.assert_close(out[0, 0, :2], torch.tensor([3.5, 4.5]))


def _reference(maps, rois):
    """Independent loop: resize, locate the max with python, score = softmax-like ratio."""
    out = torch.zeros(maps.shape[0], maps.shape[1], 4)
    for i in range(maps.shape[0]):
        x0, y0, x1, y1 = rois[i].tolist()
        w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
        W, H = math.ceil(w), math.ceil(h)
        up = F.interpolate(maps[i : i + 1], size=(H, W), mode="bicubic", align_corners=False)[0]
        for k in range(maps.shape[1]):
            flat = up[k].flatten().tolist()
            best = max(range(len(flat)), key=lambda j: (flat[j], -j))
            row, col = divmod(best, W)
            denom = torch.exp(maps[i, k] - flat[best]).sum()
            out[i, k] = torch.tensor(
                [x0 + (col + 0.5) * w / W, y0 + (row + 0.5) * h / H, flat[best], 1.0 / denom]
            )
    return out


def test_matches_reference_loop_random_and_traced():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 4, 6, 6, generator=g)
    rois = torch.tensor([[0.0, 0.0, 13.3, 7.0], [5.0, 2.0, 9.5, 20.2], [1.0, 1.0, 1.5, 30.0]])
    out = heatmaps_to_keypoints(maps, rois)
    torch.testing.assert_close(out, _reference(maps, rois), rtol=1e-5, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(heatmaps_to_keypoints, (maps, rois), check_trace=False)
    # scripted-if-tracing: other ROI counts and sizes still work
    torch.testing.assert_close(traced(maps[:2], rois[:2] * 2), _reference(maps[:2], rois[:2] * 2))


def test_keypoints_container():
    kp = Keypoints(torch.arange(24.0).reshape(2, 4, 3))
    assert len(kp) == 2
    assert kp[1].tensor.shape == (1, 4, 3) and kp[1].tensor[0, 0, 0] == 12
    assert kp[torch.tensor([True, False])].tensor.shape == (1, 4, 3)
    assert Keypoints.cat([kp, kp[0]]).tensor.shape == (3, 4, 3)
    assert kp.to("cpu").device == torch.device("cpu")
    assert repr(kp) == "Keypoints(num_instances=2)"
    with pytest.raises(AssertionError):
        Keypoints(torch.zeros(2, 4, 2))
