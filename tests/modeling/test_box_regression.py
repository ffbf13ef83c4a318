"""Box2BoxTransform(Rotated): hand-computed encode/decode, the exp clamp, and round trips."""

import math

import torch

from detectron2_export.modeling.box_regression import Box2BoxTransform, Box2BoxTransformRotated


def _random_boxes(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    wh = torch.rand(n, 2, generator=g) * 50 + 1
    return torch.cat([xy, xy + wh], dim=1)


def test_default_scale_clamp():
    assert Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0)).scale_clamp == math.log(1000.0 / 16)


def test_apply_deltas_hand_computed():
    # box (0, 0, 10, 20): w 10, h 20, centre (5, 10). With weights (10, 10, 5, 5) the deltas
    # (10, 20, 5 log 2, 0) mean dx = 1, dy = 2, dw = log 2, dh = 0: centre (15, 50), size 20 x 20.
    t = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    deltas = torch.tensor([[10.0, 20.0, 5 * math.log(2.0), 0.0]])
    torch.testing.assert_close(t.apply_deltas(deltas, boxes), torch.tensor([[5.0, 40.0, 25.0, 60.0]]))


def test_apply_deltas_clamps_dw_dh():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    out = t.apply_deltas(torch.tensor([[0.0, 0.0, 10.0, 100.0]]), boxes)
    # exp(min(d, log(62.5))) * 10 = 625 for both; centre stays (5, 5)
    torch.testing.assert_close(out, torch.tensor([[5 - 312.5, 5 - 312.5, 5 + 312.5, 5 + 312.5]]))
    # negative deltas are not clamped
    out = t.apply_deltas(torch.tensor([[0.0, 0.0, -math.log(2.0), 0.0]]), boxes)
    torch.testing.assert_close(out, torch.tensor([[2.5, 0.0, 7.5, 10.0]]))


def test_get_deltas_hand_computed():
    t = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0))
    src = torch.tensor([[0.0, 0.0, 10.0, 20.0]])
    dst = torch.tensor([[5.0, 40.0, 25.0, 60.0]])
    torch.testing.assert_close(t.get_deltas(src, dst), torch.tensor([[10.0, 20.0, 5 * math.log(2.0), 0.0]]))


def test_round_trip_random_boxes():
    t = Box2BoxTransform(weights=(10.0, 10.0, 5.0, 5.0))
    src, dst = _random_boxes(50, seed=0), _random_boxes(50, seed=1)
    deltas = t.get_deltas(src, dst)
    torch.testing.assert_close(t.apply_deltas(deltas, src), dst, rtol=1e-5, atol=1e-4)


def test_per_class_deltas_and_float32_output():
    t = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))
    boxes = _random_boxes(6, seed=2)
    deltas = torch.randn(6, 3 * 4, generator=torch.Generator().manual_seed(3)) * 0.1
    out = t.apply_deltas(deltas.half(), boxes)
    assert out.shape == (6, 12) and out.dtype == torch.float32
    for k in range(3):  # each class decodes like a separate (N, 4) call
        expected = t.apply_deltas(deltas.half()[:, 4 * k : 4 * k + 4], boxes)
        torch.testing.assert_close(out[:, 4 * k : 4 * k + 4], expected)


def test_rotated_hand_computed_and_angle_wrap():
    t = Box2BoxTransformRotated(weights=(1.0, 1.0, 1.0, 1.0, 1.0))
    boxes = torch.tensor([[10.0, 20.0, 4.0, 8.0, 170.0]])
    # dx 0.5 -> +2 in x, dh log 2 -> h 16, da 30 degrees: 170 + 30 = 200 -> -160
    deltas = torch.tensor([[0.5, 0.0, 0.0, math.log(2.0), math.radians(30.0)]])
    torch.testing.assert_close(
        t.apply_deltas(deltas, boxes), torch.tensor([[12.0, 20.0, 4.0, 16.0, -160.0]]), rtol=1e-5, atol=1e-4
    )


def test_rotated_round_trip():
    t = Box2BoxTransformRotated(weights=(10.0, 10.0, 5.0, 5.0, 1.0))
    g = torch.Generator().manual_seed(4)

    def rboxes(n):
        return torch.cat(
            [
                torch.rand(n, 2, generator=g) * 100,
                torch.rand(n, 2, generator=g) * 40 + 1,
                torch.rand(n, 1, generator=g) * 360 - 180,
            ],
            dim=1,
        )

    src, dst = rboxes(30), rboxes(30)
    out = t.apply_deltas(t.get_deltas(src, dst), src)
    torch.testing.assert_close(out[:, :4], dst[:, :4], rtol=1e-5, atol=1e-3)
    angle_err = (out[:, 4] - dst[:, 4] + 180.0) % 360.0 - 180.0  # equal modulo 360
    assert angle_err.abs().max() < 1e-3
