"""``poolers.pool`` / ``assign_levels``: multi-level RoIAlign of a whole batch in the graph, against
detectron2's ``ROIPooler`` and ``assign_boxes_to_levels``; in torch and exported."""

from typing import List

import pytest
import torch
from torch import nn

from detectron2_export.errors import ExportError
from detectron2_export.export.onnx.poolers import assign_levels, pool
from detectron2_export.modeling.poolers import ROIPooler, assign_boxes_to_levels
from detectron2_export.structures import Boxes

from .helpers import OnnxFunction, dynamic, op_types

SCALES = (1 / 4, 1 / 8, 1 / 16, 1 / 32)
ATOL = 1e-5
CANONICAL = 32
"""canonical_box_size: 8-pixel boxes go to P2, 64-pixel ones to P5, so small images use every level."""


class Pool(nn.Module):
    def __init__(self, pooler: ROIPooler) -> None:
        super().__init__()
        self.pooler = pooler

    def forward(self, p2, p3, p4, p5, boxes, batch_indices):
        return pool(self.pooler, [p2, p3, p4, p5], boxes, batch_indices)


def _features(n: int, height: int, width: int, seed: int, scales=SCALES) -> List[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 2, -(-int(height * s) // 1), -(-int(width * s) // 1), generator=g) for s in scales]


def _boxes(counts: List[int], height: int, width: int, seed: int, max_size: float = 100.0):
    """Per image, boxes of sizes 8..max_size (so across levels), some touching the image edges."""
    g = torch.Generator().manual_seed(seed)
    per_image = []
    for count in counts:
        size = torch.exp(torch.rand(count, 2, generator=g) * (torch.log(torch.tensor(max_size)) - 2.08) + 2.08)
        x0 = torch.rand(count, generator=g) * width
        y0 = torch.rand(count, generator=g) * height
        boxes = torch.stack([x0, y0, x0 + size[:, 0], y0 + size[:, 1]], dim=1)
        boxes = torch.minimum(boxes, torch.tensor([width, height, width, height], dtype=torch.float32))
        per_image.append(boxes)
    batch_indices = torch.cat([torch.full((len(b),), i, dtype=torch.int64) for i, b in enumerate(per_image)])
    return per_image, torch.cat(per_image), batch_indices


@pytest.mark.parametrize("pooler_type", ["ROIAlignV2", "ROIAlign"])
def test_torch_equals_roi_pooler(pooler_type):
    pooler = ROIPooler(3, SCALES, sampling_ratio=0, pooler_type=pooler_type, canonical_box_size=CANONICAL)
    per_image, boxes, batch_indices = _boxes([7, 0, 12], 128, 160, seed=0)
    features = _features(3, 128, 160, seed=0)
    levels = assign_levels(boxes, pooler)
    expected_levels = assign_boxes_to_levels([Boxes(b) for b in per_image], 2, 5, CANONICAL, 4)
    assert torch.equal(levels, expected_levels) and len(set(levels.tolist())) >= 3
    expected = pooler(features, [Boxes(b) for b in per_image])
    torch.testing.assert_close(pool(pooler, features, boxes, batch_indices), expected, rtol=0, atol=0)


def test_single_level_pooler_equals_roi_pooler():
    pooler = ROIPooler(2, (1 / 16,), sampling_ratio=2, pooler_type="ROIAlignV2")
    per_image, boxes, batch_indices = _boxes([3, 5], 64, 96, seed=1)
    features = _features(2, 64, 96, seed=1, scales=(1 / 16,))
    expected = pooler(features, [Boxes(b) for b in per_image])
    torch.testing.assert_close(pool(pooler, features, boxes, batch_indices), expected, rtol=0, atol=0)


def test_non_square_output_size_is_pooled_or_refused():
    """A one-level ``ROIPooler`` pools an (h, w) output size (a pyramid needs a square one, as
    upstream); pooling (h, h) instead would silently be wrong."""
    pooler = ROIPooler((2, 3), (1 / 8,), sampling_ratio=0, pooler_type="ROIAlignV2")
    per_image, boxes, batch_indices = _boxes([4], 64, 64, seed=2)
    features = _features(1, 64, 64, seed=2, scales=(1 / 8,))
    expected = pooler(features, [Boxes(b) for b in per_image])
    try:
        got = pool(pooler, features, boxes, batch_indices)
    except ExportError as e:
        assert "(2, 3)" in str(e)
    else:
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=0, atol=0)


def test_roi_pool_is_refused():
    pooler = ROIPooler(2, SCALES, sampling_ratio=0, pooler_type="ROIPool")
    with pytest.raises(ExportError, match="RoIPool"):
        pool(pooler, _features(1, 32, 32, seed=0), torch.zeros(1, 4), torch.zeros(1, dtype=torch.int64))


@pytest.fixture(scope="module")
def exported():
    pooler = ROIPooler(3, SCALES, sampling_ratio=0, pooler_type="ROIAlignV2", canonical_box_size=CANONICAL)
    _, boxes, batch_indices = _boxes([5, 6], 96, 128, seed=3)
    names = ["p2", "p3", "p4", "p5", "boxes", "batch_indices", "pooled"]
    axes = [[0, 2, 3]] * 4 + [[0], [0], [0]]
    fn = OnnxFunction(Pool(pooler), [*_features(2, 96, 128, seed=3), boxes, batch_indices], names[:6], names[6:], dynamic(names, *axes))
    return pooler, fn


def test_onnx_is_one_roi_align_per_level(exported):
    _, fn = exported
    assert op_types(fn.model).count("RoiAlign") == 4


@pytest.mark.parametrize(
    "counts, height, width, max_size",
    [([9, 2, 6], 160, 96, 100.0), ([4], 64, 224, 100.0), ([3, 5], 96, 96, 20.0), ([0, 0], 64, 64, 100.0)],
    ids=["three-images", "one-image", "levels-without-boxes", "no-boxes"],
)
def test_onnx_equals_roi_pooler_on_other_shapes(exported, counts, height, width, max_size):
    pooler, fn = exported
    per_image, boxes, batch_indices = _boxes(counts, height, width, seed=height + width, max_size=max_size)
    features = _features(len(counts), height, width, seed=height)
    expected = pooler(features, [Boxes(b) for b in per_image])
    got = torch.from_numpy(fn(*features, boxes, batch_indices)[0])
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=ATOL)


class AssignLevels(nn.Module):
    def __init__(self, pooler: ROIPooler) -> None:
        super().__init__()
        self.pooler = pooler

    def forward(self, boxes):
        return assign_levels(boxes, self.pooler)


def test_onnx_levels_at_and_around_exact_level_boundaries_equal_torch():
    """Boxes whose sqrt(area) is canonical_box_size * 2**k (the floor of an exact log2) and one
    float step either side: onnxruntime's Log/Div lowering of log2 assigns the same levels."""
    pooler = ROIPooler(3, SCALES, sampling_ratio=0, pooler_type="ROIAlignV2", canonical_box_size=CANONICAL)
    sides = torch.tensor([CANONICAL * 2.0**k for k in range(-4, 4)])
    sides = torch.cat([sides, torch.nextafter(sides, torch.zeros(())), torch.nextafter(sides, torch.full((), 1e9))])
    boxes = torch.stack([torch.zeros_like(sides), torch.zeros_like(sides), sides, sides], dim=1)
    expected = assign_boxes_to_levels([Boxes(boxes)], 2, 5, CANONICAL, 4)
    assert torch.equal(assign_levels(boxes, pooler), expected)
    fn = OnnxFunction(AssignLevels(pooler), [boxes[:3]], ["boxes"], ["levels"], dynamic(["boxes", "levels"], [0], [0]))
    assert fn(boxes)[0].tolist() == expected.tolist()
