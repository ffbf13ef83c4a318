"""``boxes``: batched box arithmetic with per-image sizes as tensors, against ``Boxes.clip`` /
``Boxes.nonempty``, ``torch.isfinite`` and an indexing loop; in torch and exported."""

import torch
from torch import nn

from detectron2_export.export.onnx.boxes import all_finite, clip, gather_rows, nonempty
from detectron2_export.structures import Boxes

from .helpers import OnnxFunction, dynamic

INF, NAN = float("inf"), float("nan")


def _boxes(n: int, b: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, b, 2, generator=g) * 60 - 10
    return torch.cat([xy, xy + torch.rand(n, b, 2, generator=g) * 40 - 5], dim=-1)


SIZES = torch.tensor([[30, 40], [45, 20], [8, 50]])


def test_clip_and_nonempty_equal_boxes_per_image():
    boxes = _boxes(3, 10, seed=0)
    clipped = clip(boxes, SIZES)
    for i, (h, w) in enumerate(SIZES.tolist()):
        expected = Boxes(boxes[i].clone())
        expected.clip((h, w))
        assert torch.equal(clipped[i], expected.tensor)
        assert torch.equal(nonempty(clipped[i]), expected.nonempty())
        assert torch.equal(nonempty(clipped[i], 2.5), expected.nonempty(threshold=2.5))


def test_clip_broadcasts_over_a_class_axis():
    boxes = _boxes(3, 12, seed=1).reshape(3, 4, 3, 4)  # (N, P, K, 4)
    assert torch.equal(clip(boxes, SIZES), clip(boxes.reshape(3, 12, 4), SIZES).reshape(3, 4, 3, 4))


def test_all_finite_hand_case():
    x = torch.tensor([[1.0, 2.0], [INF, 0.0], [0.0, -INF], [NAN, 1.0], [-3.4e38, 3.4e38]])
    assert all_finite(x).tolist() == torch.isfinite(x).all(dim=-1).tolist() == [True, False, False, False, True]


def test_gather_rows_equals_an_indexing_loop():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 7, 2, 5, generator=g)
    index = torch.randint(0, 7, (3, 4), generator=g)
    expected = torch.stack([x[n, index[n]] for n in range(3)])
    assert torch.equal(gather_rows(x, index), expected)
    assert torch.equal(gather_rows(x[..., 0, 0], index), expected[..., 0, 0])


class BoxOps(nn.Module):
    def forward(self, boxes, sizes, index):
        clipped = clip(boxes, sizes)
        return clipped, nonempty(clipped), all_finite(boxes), gather_rows(boxes, index)


def test_onnx_on_other_shapes_with_non_finite_values():
    names = ["boxes", "sizes", "index", "clipped", "nonempty", "finite", "gathered"]
    fn = OnnxFunction(
        BoxOps(), [_boxes(2, 5, seed=3), SIZES[:2], torch.tensor([[0, 4], [1, 1]])], names[:3], names[3:],
        dynamic(names, [0, 1], [0], [0, 1], [0, 1], [0, 1], [0, 1], [0, 1]),
    )
    boxes = _boxes(3, 9, seed=4)
    boxes[0, 2, 1], boxes[1, 3, 3], boxes[2, 0, 0] = NAN, INF, -INF
    index = torch.randint(0, 9, (3, 6), generator=torch.Generator().manual_seed(5))
    got = fn(boxes, SIZES, index)
    clipped, keep, finite, gathered = BoxOps()(boxes, SIZES, index)
    assert finite.tolist() == torch.isfinite(boxes).all(dim=-1).tolist()
    assert torch.from_numpy(got[2]).tolist() == finite.tolist()
    ok = finite[..., None].expand(-1, -1, 4)
    assert torch.equal(torch.from_numpy(got[0])[ok], clipped[ok])
    assert torch.equal(torch.from_numpy(got[1])[finite], keep[finite])
    torch.testing.assert_close(torch.from_numpy(got[3]), gathered, rtol=0, atol=0, equal_nan=True)
